"""H2GCN: ego and neighbour embeddings kept apart, higher-order neighbourhoods, every round's output combined.

Zhu, Yan, Zhao, Heimann, Akoglu & Koutra, "Beyond Homophily in Graph Neural Networks: Current Limitations and
Effective Designs", NeurIPS 2020.
"""

from __future__ import annotations

from collections.abc import Callable

import scipy.sparse as sp
import torch
from torch import Tensor, nn

from openautoglm.core.graph.adjacency import graph_key, simple_adjacency, sym_normalise, to_torch


def h2gcn_adjacencies(edge_index: Tensor, nodes: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The 1-hop and the *exactly* 2-hop neighbourhoods, each without self-loops, symmetric-normalised.

    ``A1`` joins neighbours; ``A2`` joins nodes two steps apart that are neither neighbours nor the same node
    (the paper's design D2: higher-order neighbourhoods kept apart from the first).
    """
    a1 = simple_adjacency(edge_index, nodes)
    two = (a1 @ a1).tocsr()
    two.data[:] = 1.0
    two = two - two.multiply(a1)  # drop pairs that are also 1-hop neighbours
    two.setdiag(0)
    two.eliminate_zeros()
    return sym_normalise(a1), sym_normalise(two)


class H2GCN(nn.Module):
    r"""H2GCN (the paper's H2GCN-1 variant) for node classification.

    .. math::
        r^{(0)} = \sigma(X W_e), \quad
        r^{(k)} = \big[\hat{A}_1 r^{(k-1)} \,\|\, \hat{A}_2 r^{(k-1)}\big], \quad
        \hat{y} = \mathrm{softmax}\big([r^{(0)} \| r^{(1)} \| \dots \| r^{(K)}] W_c\big)

    ``A1``/``A2``: the 1-hop and exactly-2-hop neighbourhoods without self-loops, ``D^-1/2 A D^-1/2``-normalised
    (:func:`h2gcn_adjacencies`); the node's own embedding ``r^(0)`` is never mixed with its neighbours' (design
    D1), and the classifier sees every round (D3). Aggregation has no weights or non-linearity, as in the paper.

    Args:
        in_dim: Input features.
        hidden: Width ``p`` of the ego embedding (the paper's default 64); round ``k`` has ``2^k p`` columns.
        out_dim: Classes.
        rounds: ``K``, the aggregation rounds (the paper's default 2).
        in_dropout: Dropout on the input features; ``dropout``: on the combined representation (defaults 0.5).
        activation: ``sigma`` of the ego embedding (ReLU in the paper).

    Shapes:
        input ``(N, in_dim)`` (dense or sparse) and ``edge_index`` ``(2, E)``; output ``(N, out_dim)``.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        out_dim: int,
        rounds: int = 2,
        in_dropout: float = 0.5,
        dropout: float = 0.5,
        activation: Callable[[Tensor], Tensor] = torch.relu,
    ) -> None:
        super().__init__()
        if rounds < 1 or hidden < 1:
            raise ValueError(f"H2GCN needs rounds >= 1 and hidden >= 1, got rounds={rounds}, hidden={hidden}")
        self.rounds, self.in_dropout, self.dropout, self.activation = rounds, in_dropout, dropout, activation
        self.embed = nn.Linear(in_dim, hidden, bias=False)
        self.classify = nn.Linear(hidden * (2 ** (rounds + 1) - 1), out_dim)
        self._cache: tuple[tuple[int, int, int, str], Tensor, Tensor] | None = None

    def adjacencies(self, edge_index: Tensor, nodes: int) -> tuple[Tensor, Tensor]:
        """``A1`` and ``A2`` as sparse tensors, built once per graph."""
        key = graph_key(edge_index, nodes)
        if self._cache is None or self._cache[0] != key:
            a1, a2 = h2gcn_adjacencies(edge_index, nodes)
            self._cache = (key, to_torch(a1, edge_index.device), to_torch(a2, edge_index.device))
        return self._cache[1], self._cache[2]

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        a1, a2 = self.adjacencies(edge_index, x.size(0))
        if x.is_sparse:
            x = x.to_dense()  # WebKB-sized inputs: the dense product is cheap and dropout stays simple
        r = self.activation(self.embed(nn.functional.dropout(x, self.in_dropout, self.training)))
        rounds = [r]
        for _ in range(self.rounds):
            r = torch.cat([torch.sparse.mm(a1, r), torch.sparse.mm(a2, r)], dim=-1)
            rounds.append(r)
        out: Tensor = self.classify(nn.functional.dropout(torch.cat(rounds, dim=-1), self.dropout, self.training))
        return out
