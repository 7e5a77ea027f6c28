"""Graph operators, one registered builder each: ``build(in_dim, out_dim, heads) -> module(x, edge_index)``.

The names follow NAS-Bench-Graph (gat, gcn, gin, cheb, sage, arma, graph, fc, skip) so its architectures map onto
ours one to one; ``appnp`` is an extra propagation op for our own searches.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch_geometric.nn import APPNP, ARMAConv, ChebConv, GATConv, GCNConv, GINConv, GraphConv, SAGEConv

from openautoglm.core.registry import Registry

OpBuilder = Callable[[int, int, int], nn.Module]

#: Operators by name.
OPS: Registry[OpBuilder] = Registry("graph operator")

#: The NAS-Bench-Graph operator list, in its order (its hashes depend on the order).
NASBENCH_OPS = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")


class EdgeIgnoring(nn.Module):
    """Wraps a module that takes only ``x`` so it can be called as ``op(x, edge_index)``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.module(x)


class Propagate(nn.Module):
    """APPNP (Gasteiger et al., ICLR 2019): a linear map, then K steps of personalised-PageRank propagation."""

    def __init__(self, in_dim: int, out_dim: int, k: int = 10, alpha: float = 0.1) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        self.propagate = APPNP(K=k, alpha=alpha, cached=True)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.propagate(self.linear(x), edge_index)


@OPS.register("gcn")
def gcn(in_dim: int, out_dim: int, heads: int) -> nn.Module:
    """GCN (Kipf & Welling, ICLR 2017): symmetric-normalised neighbourhood mean; normalisation cached."""
    return GCNConv(in_dim, out_dim, cached=True)


@OPS.register("gat")
def gat(in_dim: int, out_dim: int, heads: int) -> nn.Module:
    """GAT (Velickovic et al., ICLR 2018): ``heads`` attention heads of ``out_dim // heads`` channels, concatenated."""
    heads = max(1, heads)
    return GATConv(in_dim, max(1, out_dim // heads), heads=heads, concat=True)


@OPS.register("sage")
def sage(in_dim: int, out_dim: int, heads: int) -> nn.Module:
    """GraphSAGE (Hamilton et al., NeurIPS 2017), mean aggregation, root weight kept."""
    return SAGEConv(in_dim, out_dim, aggr="mean")


@OPS.register("gin")
def gin(in_dim: int, out_dim: int, heads: int) -> nn.Module:
    """GIN (Xu et al., ICLR 2019): sum aggregation followed by a 2-layer MLP."""
    return GINConv(nn.Sequential(nn.Linear(in_dim, out_dim), nn.ReLU(), nn.Linear(out_dim, out_dim)))


@OPS.register("cheb")
def cheb(in_dim: int, out_dim: int, heads: int) -> nn.Module:
    """Chebyshev spectral convolution (Defferrard et al., NeurIPS 2016), K = 2."""
    return ChebConv(in_dim, out_dim, K=2)


@OPS.register("arma")
def arma(in_dim: int, out_dim: int, heads: int) -> nn.Module:
    """ARMA filters (Bianchi et al., TPAMI 2021), one stack, one layer."""
    return ARMAConv(in_dim, out_dim)


@OPS.register("graph", "k-gnn")
def graph(in_dim: int, out_dim: int, heads: int) -> nn.Module:
    """GraphConv / k-GNN (Morris et al., AAAI 2019): sum aggregation plus a root weight."""
    return GraphConv(in_dim, out_dim)


@OPS.register("fc", "mlp")
def fc(in_dim: int, out_dim: int, heads: int) -> nn.Module:
    """A fully-connected layer that ignores the edges."""
    return EdgeIgnoring(nn.Linear(in_dim, out_dim))


@OPS.register("skip", "identity")
def skip(in_dim: int, out_dim: int, heads: int) -> nn.Module:
    """Identity (a skip connection); needs ``in_dim == out_dim``."""
    if in_dim != out_dim:
        raise ValueError(f"skip needs equal dimensions, got {in_dim} -> {out_dim}")
    return EdgeIgnoring(nn.Identity())


@OPS.register("appnp")
def appnp(in_dim: int, out_dim: int, heads: int) -> nn.Module:
    """APPNP propagation (K = 10, alpha = 0.1) after a linear map."""
    return Propagate(in_dim, out_dim)


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "elu": nn.functional.elu,
    "tanh": torch.tanh,
    "leaky_relu": nn.functional.leaky_relu,
    "linear": lambda x: x,
}
