"""GPR-GNN's generalised PageRank propagation with learnable, signed weights.

Chien, Peng, Li & Milenkovic, "Adaptive Universal Generalized PageRank Graph Neural Network", ICLR 2021.
"""

from __future__ import annotations

import scipy.sparse as sp
import torch
from torch import Tensor, nn

from openautoglm.core.graph.adjacency import graph_key, simple_adjacency, sym_normalise, to_torch


class GPRProp(nn.Module):
    r"""Generalised PageRank propagation of node representations (GPR-GNN's ``GPR_prop``).

    .. math::
        Z = \sum_{k=0}^{K} \gamma_k \hat{A}^k H, \qquad \hat{A} = D^{-1/2} (A + I) D^{-1/2}

    ``H`` are the per-node logits of an MLP; the weights ``gamma`` are learnt and may turn negative, which lets the
    filter become high-pass on heterophilic graphs (APPNP fixes them to ``alpha (1 - alpha)^k``). They start at
    that personalised-PageRank value (``gamma_k = alpha (1 - alpha)^k``, ``gamma_K = (1 - alpha)^K``), the paper's
    default initialisation, and are excluded from weight decay (:meth:`no_weight_decay`), as in the paper's code.

    Args:
        hops: ``K``, the propagation steps (the paper's default 10).
        alpha: Teleport probability of the initialisation (default 0.1).
        dropout: Dropout on ``H`` before propagating (the paper's ``dprate``, default 0.5).

    Shapes:
        input ``(N, C)`` and ``edge_index`` ``(2, E)``; output ``(N, C)``.
    """

    def __init__(self, hops: int = 10, alpha: float = 0.1, dropout: float = 0.5) -> None:
        super().__init__()
        if hops < 1 or not 0.0 < alpha <= 1.0:
            raise ValueError(f"GPR-GNN needs hops >= 1 and 0 < alpha <= 1, got hops={hops}, alpha={alpha}")
        self.hops, self.alpha, self.dropout = hops, alpha, dropout
        gammas = alpha * (1 - alpha) ** torch.arange(hops + 1, dtype=torch.float32)
        gammas[-1] = (1 - alpha) ** hops
        self.gammas = nn.Parameter(gammas)
        self._cache: tuple[tuple[int, int, int, str], Tensor] | None = None

    def no_weight_decay(self) -> set[str]:
        """Parameter names the optimiser must not decay."""
        return {"gammas"}

    def adjacency(self, edge_index: Tensor, nodes: int) -> Tensor:
        """``D^-1/2 (A + I) D^-1/2`` as a sparse tensor, built once per graph."""
        key = graph_key(edge_index, nodes)
        if self._cache is None or self._cache[0] != key:
            matrix = simple_adjacency(edge_index, nodes) + sp.identity(nodes, dtype="float32", format="csr")
            self._cache = (key, to_torch(sym_normalise(matrix), edge_index.device))
        return self._cache[1]

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        adjacency = self.adjacency(edge_index, x.size(0))
        h = nn.functional.dropout(x, self.dropout, self.training)
        out = self.gammas[0] * h
        for k in range(1, self.hops + 1):
            h = torch.sparse.mm(adjacency, h)
            out = out + self.gammas[k] * h
        return out
