"""The trained space: a stack of 1-4 message-passing layers of one operator family, with its training recipe.

Where the NAS-Bench-Graph DAG space (``space.py``) fixes one width, two GAT heads and one training recipe for
every operator, this space can express the textbook winners exactly: PyG's GCN (2 layers, 16 hidden, dropout
0.5, lr 0.01, weight decay 5e-4, row-normalised features), PyG's GAT (8 heads x 8, dropout 0.6 on inputs, hidden
and attention, lr 0.005, patience 100), APPNP (an MLP then personalised-PageRank propagation) and the GCN
autoencoder for links. Every decision is a choice the searchers make:

- ``op``: the family (:data:`FAMILIES`: mlp, gcn, gat, sage, appnp, gprgnn, h2gcn); it also fixes the *published*
  training recipe;
- ``layers`` (1-4) and ``width1..3`` (per-layer widths; for gat the total over heads, ``width // heads`` each);
- ``heads`` and ``out_heads`` (gat), ``attn_dropout`` (gat), ``hops``/``alpha`` (appnp, gprgnn), ``rounds``
  (h2gcn);
- ``in_dropout`` (on the input features), ``dropout`` (between layers), ``activation``;
- ``skip``: none, residual (add a projection of the layer's input) or jk (jumping knowledge: concatenate every
  layer's output, then a linear classifier);
- ``norm``: feature normalisation (:data:`~openautoglm.core.graph.features.FEATURE_NORMS`);
- ``recipe``: a variation of the family's published recipe (:data:`RECIPES`), so learning rate, weight decay and
  patience are searched per operator family, not one setting for all.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn import APPNP, GATConv, GCNConv
from torch_geometric.utils import scatter

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.graph.config import TrainConfig
from openautoglm.core.graph.features import FEATURE_NORMS
from openautoglm.core.graph.gprgnn import GPRProp
from openautoglm.core.graph.h2gcn import H2GCN
from openautoglm.core.graph.ops import ACTIVATIONS
from openautoglm.core.graph.space import Decision
from openautoglm.core.registry import Registry

SKIPS = ("none", "residual", "jk")


@dataclass(frozen=True)
class Recipe:
    """A family's training recipe (Adam; early stopping on validation accuracy, evaluated every epoch)."""

    lr: float
    weight_decay: float
    max_epochs: int
    patience: int


@dataclass(frozen=True)
class Family:
    """An operator family: how one layer is built, an optional propagation after the last, its recipe.

    Attributes:
        layer: ``layer(in_dim, out_dim, arch, last) -> module(x, edge_index)``.
        recipe: The published recipe of the family.
        propagation: ``propagation(arch) -> module(x, edge_index)`` applied to the output (APPNP), or None.
        sparse_input: Whether the first layer takes sparse features (it starts with a linear map); otherwise they
            are made dense first (SAGE aggregates the raw features before its linear map).
        network: ``network(arch, in_dim, out_dim) -> module(x, edge_index)`` for a family that is not a stack of
            layers (H2GCN); it replaces the stack, and ``layer`` is unused.
    """

    layer: Callable[[int, int, StackArch, bool], nn.Module]
    recipe: Recipe
    propagation: Callable[[StackArch], nn.Module] | None = None
    sparse_input: bool = True
    network: Callable[[StackArch, int, int], nn.Module] | None = None


#: Operator families of the trained space.
FAMILIES: Registry[Family] = Registry("operator family", base=Family)


class _Linear(nn.Module):
    """``nn.Linear`` called as ``layer(x, edge_index)``."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        out: Tensor = self.linear(x)
        return out


def _gcn(in_dim: int, out_dim: int, arch: StackArch, last: bool) -> nn.Module:
    return GCNConv(in_dim, out_dim, cached=True)


class MeanSage(nn.Module):
    """GraphSAGE with mean aggregation (Hamilton et al., NeurIPS 2017): ``mean_j(x_j) W_l + b + x_i W_r``.

    The same function as PyG's ``SAGEConv(aggr="mean")``, computed as ``mean_j(x_j W_l)`` (the mean is linear) so
    the linear maps come first and sparse bag-of-words features stay sparse (about 5x faster on Cora).
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.lin_l = nn.Linear(in_dim, out_dim, bias=False)
        self.lin_r = nn.Linear(in_dim, out_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        h = self.lin_l(x)
        mean = scatter(h[edge_index[0]], edge_index[1], dim=0, dim_size=h.size(0), reduce="mean")
        return mean + self.bias + self.lin_r(x)


def _sage(in_dim: int, out_dim: int, arch: StackArch, last: bool) -> nn.Module:
    return MeanSage(in_dim, out_dim)


def _gat(in_dim: int, out_dim: int, arch: StackArch, last: bool) -> nn.Module:
    if last:  # the output layer averages its heads (GAT's classifier layer)
        return GATConv(in_dim, out_dim, heads=arch.out_heads, concat=False, dropout=arch.attn_dropout)
    return GATConv(in_dim, max(1, out_dim // arch.heads), heads=arch.heads, dropout=arch.attn_dropout)


def _mlp(in_dim: int, out_dim: int, arch: StackArch, last: bool) -> nn.Module:
    return _Linear(in_dim, out_dim)


def _ppr(arch: StackArch) -> nn.Module:
    return APPNP(K=arch.hops, alpha=arch.alpha, cached=True)


def _gpr(arch: StackArch) -> nn.Module:
    return GPRProp(hops=arch.hops, alpha=arch.alpha, dropout=arch.dropout)


def _h2gcn(arch: StackArch, in_dim: int, out_dim: int) -> nn.Module:
    return H2GCN(
        in_dim,
        arch.widths[0] if arch.widths else 64,
        out_dim,
        rounds=arch.rounds,
        in_dropout=arch.in_dropout,
        dropout=arch.dropout,
        activation=ACTIVATIONS[arch.activation],
    )


# An MLP on the node features: the floor on heterophilic graphs, where it beats GCN and GAT by 20-35 points.
FAMILIES.add("mlp", Family(_mlp, Recipe(lr=0.01, weight_decay=5e-4, max_epochs=200, patience=100)))
FAMILIES.add("gcn", Family(_gcn, Recipe(lr=0.01, weight_decay=5e-4, max_epochs=200, patience=100)))
FAMILIES.add("gat", Family(_gat, Recipe(lr=0.005, weight_decay=5e-4, max_epochs=300, patience=100)))
FAMILIES.add("sage", Family(_sage, Recipe(lr=0.01, weight_decay=5e-4, max_epochs=200, patience=100)))
FAMILIES.add("appnp", Family(_mlp, Recipe(lr=0.01, weight_decay=5e-4, max_epochs=300, patience=100), propagation=_ppr))
# GPR-GNN (Chien et al., ICLR 2021): an MLP, then K steps of propagation with learnt signed weights. The paper's
# code trains up to 1,000 epochs with patience 200; lr 0.01 is from its grid {0.002, 0.01, 0.05}.
FAMILIES.add(
    "gprgnn", Family(_mlp, Recipe(lr=0.01, weight_decay=5e-4, max_epochs=1000, patience=200), propagation=_gpr)
)
# H2GCN (Zhu et al., NeurIPS 2020): ego / 1-hop / 2-hop embeddings kept apart; 500 epochs as in the paper.
FAMILIES.add("h2gcn", Family(_mlp, Recipe(lr=0.01, weight_decay=5e-4, max_epochs=500, patience=100), network=_h2gcn))

#: Variations of a family's published recipe (the ``recipe`` decision): ``recipe -> recipe``.
RECIPES: dict[str, Callable[[Recipe], Recipe]] = {
    "published": lambda r: r,
    "strong_reg": lambda r: replace(r, weight_decay=min(r.weight_decay * 4, 1e-2)),
    "weak_reg": lambda r: replace(r, weight_decay=r.weight_decay / 10),
    "slow": lambda r: replace(r, lr=r.lr / 2, max_epochs=r.max_epochs * 2, patience=r.patience * 2),
}


@dataclass(frozen=True)
class StackArch:
    """One candidate of the trained space: frozen, hashable, JSON-serialisable (see the module docstring).

    Attributes:
        op: Operator family (:data:`FAMILIES`).
        widths: Hidden widths, one per hidden layer: ``layers - 1`` of them, or ``layers`` with ``skip="jk"``
            (every conv layer is then hidden and a linear layer classifies their concatenation).
        heads, out_heads, attn_dropout: GAT's heads in hidden layers and in the output layer, attention dropout.
        hops, alpha: APPNP's and GPR-GNN's propagation steps and teleport probability (GPR-GNN's initialisation).
        rounds: H2GCN's aggregation rounds.
        in_dropout, dropout: Dropout on the input features and between layers.
        skip: ``none``, ``residual`` or ``jk``.
        norm: Feature normalisation (``row`` divides each node's features by their sum).
        lr, weight_decay, max_epochs, patience: The training recipe.
        embed: Output size of the encoder in link prediction.
        name: A label for baselines ("gcn-pyg"); not part of the identity.
    """

    op: str = "gcn"
    widths: tuple[int, ...] = (16,)
    heads: int = 1
    out_heads: int = 1
    attn_dropout: float = 0.0
    hops: int = 10
    alpha: float = 0.1
    rounds: int = 2
    in_dropout: float = 0.5
    dropout: float = 0.5
    activation: str = "relu"
    skip: str = "none"
    norm: str = "row"
    lr: float = 0.01
    weight_decay: float = 5e-4
    max_epochs: int = 200
    patience: int = 100
    embed: int = 64
    name: str = field(default="", compare=False)

    kind = "stack"

    def __post_init__(self) -> None:
        FAMILIES.resolve(self.op)
        FEATURE_NORMS.resolve(self.norm)
        if self.activation not in ACTIVATIONS:
            raise ConfigurationError(f"unknown activation '{self.activation}'; choose from {sorted(ACTIVATIONS)}")
        if self.skip not in SKIPS:
            raise ConfigurationError(f"unknown skip '{self.skip}'; choose from {list(SKIPS)}")
        if self.skip == "jk" and not self.widths:
            raise ConfigurationError("jumping knowledge needs at least one hidden layer width")
        if any(w < 1 for w in self.widths) or self.heads < 1 or self.out_heads < 1 or self.rounds < 1:
            raise ConfigurationError(f"widths and heads must be positive: {self.widths}, {self.heads}")

    @property
    def layers(self) -> int:
        """Graph (or MLP) layers, the classifier layer included unless ``skip="jk"``."""
        return len(self.widths) + (0 if self.skip == "jk" else 1)

    @property
    def valid(self) -> bool:
        return True

    @property
    def feature_norm(self) -> str:
        return self.norm

    @property
    def embedding_dim(self) -> int:
        return self.embed

    def key(self) -> str:
        heads = f"|x{self.heads}/{self.out_heads}|ad{self.attn_dropout}" if self.op == "gat" else ""
        hops = f"|k{self.hops}a{self.alpha}" if self.op in ("appnp", "gprgnn") else ""
        hops += f"|r{self.rounds}" if self.op == "h2gcn" else ""
        return (
            f"{self.op}{heads}{hops}|w{list(self.widths)}|{self.skip}|id{self.in_dropout}|d{self.dropout}|"
            f"{self.activation}|{self.norm}|lr{self.lr:g}|wd{self.weight_decay:g}|e{self.max_epochs}p{self.patience}"
        )

    def describe(self) -> str:
        label = f"{self.name}: " if self.name else ""
        return f"{label}{self.op} x{self.layers} {list(self.widths)} {self.skip}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> StackArch:
        data = {k: v for k, v in value.items() if k != "kind"}
        data["widths"] = tuple(int(v) for v in data.get("widths", ()))
        return cls(**data)

    def replace(self, **changes: Any) -> StackArch:
        return replace(self, **changes)

    def train_config(self, base: TrainConfig) -> TrainConfig:
        """This candidate's recipe, evaluated every epoch; ``base.max_epochs`` stays an upper bound."""
        return replace(
            base,
            lr=self.lr,
            weight_decay=self.weight_decay,
            max_epochs=min(self.max_epochs, base.max_epochs),
            patience=self.patience,
            eval_every=1,
        )

    def build(self, in_dim: int, out_dim: int) -> nn.Module:
        network = FAMILIES.resolve(self.op).network
        return network(self, in_dim, out_dim) if network is not None else StackNet(self, in_dim, out_dim)


class StackNet(nn.Module):
    """The network of a :class:`StackArch`.

    ``x -> dropout(in) -> [layer -> act -> dropout (+ residual)] x hidden -> last layer [-> propagation]``; with
    jumping knowledge, every hidden layer's output is concatenated and a linear layer classifies.
    Sparse input features (bag of words) go through the first layer as a sparse product.
    """

    def __init__(self, arch: StackArch, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.arch = arch
        family = FAMILIES.resolve(arch.op)
        dims = [in_dim, *arch.widths]
        self.hidden = nn.ModuleList(family.layer(dims[i], dims[i + 1], arch, False) for i in range(len(arch.widths)))
        self.projections = nn.ModuleList(
            nn.Identity() if dims[i] == dims[i + 1] else nn.Linear(dims[i], dims[i + 1], bias=False)
            for i in range(len(arch.widths) if arch.skip == "residual" else 0)
        )
        if arch.skip == "jk":
            self.last: nn.Module = _Linear(sum(arch.widths), out_dim)
        else:
            self.last = family.layer(dims[-1], out_dim, arch, True)
        self.propagation = family.propagation(arch) if family.propagation is not None else None
        self.activation = ACTIVATIONS[arch.activation]
        self.sparse_input = family.sparse_input

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        arch, drop = self.arch, nn.functional.dropout
        if x.is_sparse and not self.sparse_input:
            x = x.to_dense()
        h = _dropout_input(x, arch.in_dropout, self.training)
        outputs: list[Tensor] = []
        for i, layer in enumerate(self.hidden):
            out = self.activation(layer(h, edge_index))
            if arch.skip == "residual" and i > 0:  # the first layer's input is the raw (sparse) features
                out = out + self.projections[i](h)
            h = drop(out, arch.dropout, self.training)
            outputs.append(h)
        if arch.skip == "jk":
            h = torch.cat(outputs, dim=-1)
        out = self.last(h, edge_index)
        if self.propagation is not None:
            out = self.propagation(out, edge_index)
        result: Tensor = out
        return result


def _dropout_input(x: Tensor, p: float, training: bool) -> Tensor:
    if not x.is_sparse:
        return nn.functional.dropout(x, p, training)
    if not training or p == 0:
        return x
    x = x.coalesce()
    values = nn.functional.dropout(x.values(), p, training)
    return torch.sparse_coo_tensor(x.indices(), values, x.shape, check_invariants=False)


# The canonical baselines, with their published recipes: every search trains them first.
GCN_PYG = StackArch(name="gcn-pyg")
GAT_PYG = StackArch(
    op="gat",
    widths=(64,),
    heads=8,
    out_heads=1,
    attn_dropout=0.6,
    in_dropout=0.6,
    dropout=0.6,
    activation="elu",
    lr=0.005,
    weight_decay=5e-4,
    max_epochs=300,
    patience=100,
    name="gat-pyg",
)
# PyG's autoencoder example: GCN 128 -> 64, no dropout, no weight decay, fresh negatives every epoch.
GAE = StackArch(
    widths=(128,), in_dropout=0.0, dropout=0.0, weight_decay=0.0, max_epochs=400, patience=100, embed=64, name="gae"
)

# APPNP (Gasteiger et al., ICLR 2019) as PyG's citation benchmark runs it: a 2-layer MLP (64 hidden, dropout 0.5),
# then 10 steps of personalised PageRank (alpha 0.1), lr 0.01, weight decay 5e-4, row-normalised features.
APPNP_PYG = StackArch(
    op="appnp", widths=(64,), in_dropout=0.5, dropout=0.5, max_epochs=300, patience=100, name="appnp-pyg"
)
# A 2-layer MLP on the node features (64 hidden, dropout 0.5, lr 0.01, weight decay 5e-4), the recipe of the
# heterophily papers' MLP rows (Geom-GCN splits; H2GCN, GPR-GNN, GGCN tables).
MLP = StackArch(op="mlp", widths=(64,), in_dropout=0.5, dropout=0.5, max_epochs=200, patience=100, name="mlp")
# GraphSAGE (mean) as the heterophily papers run it: 2 layers, 64 hidden, dropout 0.5, lr 0.01, weight decay 5e-4.
SAGE = StackArch(op="sage", widths=(64,), in_dropout=0.5, dropout=0.5, max_epochs=200, patience=100, name="sage")
# H2GCN-1 with the paper's defaults: 64 hidden, K = 2 rounds, dropout 0.5, lr 0.01, L2 5e-4, 500 epochs.
H2GCN_PAPER = StackArch(
    op="h2gcn", widths=(64,), rounds=2, in_dropout=0.5, dropout=0.5, max_epochs=500, patience=100, name="h2gcn"
)
# GPR-GNN with the paper's defaults: 2-layer MLP (64 hidden, dropout 0.5), K = 10, PPR initialisation alpha 0.1,
# dprate 0.5, weight decay 5e-4 (none on the gammas), up to 1,000 epochs with patience 200; lr 0.01.
GPRGNN_PAPER = StackArch(
    op="gprgnn",
    widths=(64,),
    hops=10,
    alpha=0.1,
    in_dropout=0.5,
    dropout=0.5,
    lr=0.01,
    max_epochs=1000,
    patience=200,
    name="gprgnn",
)

#: Published recipes by name: what the meta-feature policy orders into a search's baselines (see ``meta.policy``).
RECIPE_BASELINES: dict[str, StackArch] = {
    arch.name: arch for arch in (MLP, GCN_PYG, GAT_PYG, APPNP_PYG, SAGE, H2GCN_PAPER, GPRGNN_PAPER, GAE)
}

#: Baselines by task when no meta-features order them (node: the MLP always, GCN, GAT and APPNP's recipes).
BASELINES: dict[str, tuple[StackArch, ...]] = {"node": (GCN_PYG, GAT_PYG, APPNP_PYG, MLP), "link": (GAE,)}

#: Warm starts by task: configurations a searcher proposes first (none now: APPNP's published recipe is a
#: baseline, and is reported as one).
WARM_STARTS: dict[str, tuple[StackArch, ...]] = {"node": (), "link": ()}


def baselines_by_name(names: Sequence[str]) -> tuple[StackArch, ...]:
    """The published recipes ``names`` refers to, in that order (unknown names raise, listing the choices)."""
    unknown = [n for n in names if n not in RECIPE_BASELINES]
    if unknown:
        raise ConfigurationError(f"unknown baseline recipes {unknown}; choose from {sorted(RECIPE_BASELINES)}")
    return tuple(RECIPE_BASELINES[n] for n in names)


@dataclass(frozen=True)
class StackSpace:
    """The decisions of the trained space and prior weights over their options.

    Args:
        ops, widths, heads, ...: Options of each decision (one value fixes it).
        max_layers: Up to 4.
        task: ``node`` (recipes from the family) or ``link`` (the autoencoder's recipe: no weight decay).
        prior: Optional sampling weights ``{decision: {option: weight}}``.
    """

    ops: tuple[str, ...] = ("mlp", "gcn", "gat", "sage", "appnp", "gprgnn", "h2gcn")
    max_layers: int = 3
    widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    heads: tuple[int, ...] = (1, 2, 4, 8)
    out_heads: tuple[int, ...] = (1, 8)
    attn_dropout: tuple[float, ...] = (0.0, 0.3, 0.6)
    hops: tuple[int, ...] = (5, 10, 20)
    alpha: tuple[float, ...] = (0.1, 0.2, 0.5, 0.9)
    rounds: tuple[int, ...] = (1, 2)
    in_dropout: tuple[float, ...] = (0.0, 0.2, 0.5, 0.6, 0.8)
    dropout: tuple[float, ...] = (0.0, 0.2, 0.5, 0.6, 0.8)
    activation: tuple[str, ...] = ("relu", "elu")
    skip: tuple[str, ...] = SKIPS
    norm: tuple[str, ...] = ("row", "none")
    recipe: tuple[str, ...] = tuple(RECIPES)
    task: str = "node"
    prior: Mapping[str, Mapping[Any, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for op in self.ops:
            FAMILIES.resolve(op)
        if not 1 <= self.max_layers <= 4:
            raise ConfigurationError(f"max_layers must be 1-4, got {self.max_layers}")
        unknown = [r for r in self.recipe if r not in RECIPES]
        if unknown:
            raise ConfigurationError(f"unknown recipes {unknown}; choose from {list(RECIPES)}")

    @property
    def decisions(self) -> tuple[Decision, ...]:
        return (
            Decision("op", self.ops),
            Decision("layers", tuple(range(1, self.max_layers + 1))),
            *(Decision(f"width{i}", self.widths) for i in range(1, self.max_layers + 1)),
            Decision("heads", self.heads),
            Decision("out_heads", self.out_heads),
            Decision("attn_dropout", self.attn_dropout),
            Decision("hops", self.hops),
            Decision("alpha", self.alpha),
            Decision("rounds", self.rounds),
            Decision("in_dropout", self.in_dropout),
            Decision("dropout", self.dropout),
            Decision("activation", self.activation),
            Decision("skip", self.skip),
            Decision("norm", self.norm),
            Decision("recipe", self.recipe),
        )

    @property
    def size(self) -> int:
        return math.prod(len(d.options) for d in self.decisions)

    def weights(self, decision: Decision) -> list[float]:
        table = self.prior.get(decision.name, {})
        return [float(table.get(o, 1.0)) for o in decision.options]

    def with_prior(self, extra: Mapping[str, Mapping[Any, float]]) -> StackSpace:
        merged: dict[str, dict[Any, float]] = {k: dict(v) for k, v in self.prior.items()}
        for name, table in extra.items():
            current = merged.setdefault(name, {})
            for option, weight in table.items():
                current[option] = current.get(option, 1.0) * float(weight)
        return replace(self, prior=merged)

    def build(self, choice: Mapping[str, Any]) -> StackArch:
        """The candidate for a ``{decision: option}`` mapping (decisions the family does not use are ignored)."""
        op = str(choice["op"])
        layers = int(choice["layers"])
        skip = str(choice["skip"])
        hidden = layers if skip == "jk" else layers - 1
        if skip == "jk" and layers == 1:
            skip, hidden = "none", 0  # one layer has nothing to jump over
        if FAMILIES.resolve(op).network is not None:
            skip, hidden = "none", 1  # a whole network (H2GCN): one width, its own depth (rounds)
        base = FAMILIES.resolve(op).recipe
        if self.task == "link":
            base = replace(base, weight_decay=0.0, max_epochs=400, lr=0.01)
        recipe = RECIPES[str(choice["recipe"])](base)
        gat, appnp = op == "gat", op in ("appnp", "gprgnn")
        return StackArch(
            op=op,
            widths=tuple(int(choice[f"width{i}"]) for i in range(1, hidden + 1)),
            heads=int(choice["heads"]) if gat else 1,
            out_heads=int(choice["out_heads"]) if gat else 1,
            attn_dropout=float(choice["attn_dropout"]) if gat else 0.0,
            hops=int(choice["hops"]) if appnp else 10,
            alpha=float(choice["alpha"]) if appnp else 0.1,
            rounds=int(choice["rounds"]) if op == "h2gcn" else 2,
            in_dropout=float(choice["in_dropout"]),
            dropout=float(choice["dropout"]) if hidden else 0.0,
            activation=str(choice["activation"]),
            skip=skip,
            norm=str(choice["norm"]),
            lr=recipe.lr,
            weight_decay=recipe.weight_decay,
            max_epochs=recipe.max_epochs,
            patience=recipe.patience,
        )

    def choice(self, arch: Any) -> dict[str, Any]:
        """A ``{decision: option}`` mapping that builds ``arch`` (unused decisions at their first option)."""
        if not isinstance(arch, StackArch):
            raise ConfigurationError(f"{arch.key()} is not a candidate of the trained (stack) space")
        first = {d.name: d.options[0] for d in self.decisions}
        values = dict(first)
        values.update(op=arch.op, layers=arch.layers, skip=arch.skip, norm=arch.norm, activation=arch.activation)
        values.update(in_dropout=arch.in_dropout, dropout=arch.dropout if arch.widths else first["dropout"])
        for i, width in enumerate(arch.widths, start=1):
            values[f"width{i}"] = width
        if arch.op == "gat":
            values.update(heads=arch.heads, out_heads=arch.out_heads, attn_dropout=arch.attn_dropout)
        if arch.op in ("appnp", "gprgnn"):
            values.update(hops=arch.hops, alpha=arch.alpha)
        if arch.op == "h2gcn":
            values.update(rounds=arch.rounds)
        for name in self.recipe:
            values["recipe"] = name
            if self.build(values) == arch:
                return values
        raise ConfigurationError(f"{arch.key()} is outside this search space (no decision vector builds it)")

    def encode(self, arch: Any) -> list[int]:
        choice = self.choice(arch)
        try:
            return [d.options.index(choice[d.name]) for d in self.decisions]
        except ValueError as error:
            raise ConfigurationError(f"{arch.key()} is outside this search space: {error}") from None

    def decode(self, indices: Sequence[int]) -> StackArch:
        return self.build({d.name: d.options[i] for d, i in zip(self.decisions, indices, strict=True)})

    def sample(self, rng: random.Random, use_prior: bool = True) -> StackArch:
        choice = {
            d.name: rng.choices(d.options, weights=self.weights(d) if use_prior else None)[0] for d in self.decisions
        }
        return self.build(choice)

    def mutate(self, arch: Any, rng: random.Random) -> StackArch:
        """Change decisions until the candidate differs (a decision its family ignores changes nothing)."""
        choice = self.choice(arch)
        free = [d for d in self.decisions if len(d.options) > 1]
        for _ in range(100):
            decision = rng.choice(free)
            others = [o for o in decision.options if o != choice[decision.name]]
            child = self.build({**choice, decision.name: rng.choice(others)})
            if child != arch:
                return child
        result: StackArch = arch
        return result

    def contains(self, arch: Any) -> bool:
        try:
            self.encode(arch)
        except ConfigurationError:
            return False
        return True
