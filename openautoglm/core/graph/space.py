"""Architectures (hashable, serialisable values), the search space of decisions, and the model builder.

The macro space is NAS-Bench-Graph's: a pre-processing linear layer, then four computing nodes; node ``i`` takes
the output of an earlier node (``link[i]``, 0 = the pre-processed input) and applies an operator; the outputs of
the nodes nobody takes as input are summed and a linear layer classifies. Hidden size, dropout, activation and
heads complete an architecture.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.graph.config import TrainConfig
from openautoglm.core.graph.ops import ACTIVATIONS, NASBENCH_OPS, OPS

NODES = 4


@dataclass(frozen=True)
class Architecture:
    """One candidate network. Frozen, so it can be hashed, deduplicated and used as a cache key.

    Attributes:
        link: For each of the 4 nodes, the index of its input (0 = input, i = node i); ``link[i] <= i``.
        ops: The operator of each node (names from :data:`~openautoglm.core.graph.ops.OPS`).
        hidden: Width of every layer.
        dropout: Dropout before every layer.
        activation: Non-linearity after every operator except ``skip``.
        heads: Attention heads of ``gat`` nodes.
    """

    link: tuple[int, ...] = (0, 1, 2, 3)
    ops: tuple[str, ...] = ("gcn", "gcn", "skip", "skip")
    hidden: int = 64
    dropout: float = 0.5
    activation: str = "relu"
    heads: int = 2

    def __post_init__(self) -> None:
        if len(self.link) != NODES or len(self.ops) != NODES:
            raise ConfigurationError(f"an architecture has {NODES} nodes: got link {self.link}, ops {self.ops}")
        for i, parent in enumerate(self.link):
            if not 0 <= parent <= i:
                raise ConfigurationError(f"link[{i}] = {parent}: a node can only take an earlier node (0..{i})")
        for op in self.ops:
            OPS.resolve(op)
        if self.activation not in ACTIVATIONS:
            raise ConfigurationError(f"unknown activation '{self.activation}'; choose from {sorted(ACTIVATIONS)}")

    @property
    def valid(self) -> bool:
        """False when every node is a skip connection (the network would be two linear layers)."""
        return any(op != "skip" for op in self.ops)

    def key(self) -> str:
        """A short stable text key."""
        return f"{list(self.link)}|{','.join(self.ops)}|h{self.hidden}|d{self.dropout}|{self.activation}|x{self.heads}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Architecture:
        data = dict(value)
        data["link"] = tuple(int(v) for v in data["link"])
        data["ops"] = tuple(str(v) for v in data["ops"])
        return cls(**data)

    def replace(self, **changes: Any) -> Architecture:
        return Architecture.from_dict({**self.as_dict(), **changes})

    kind = "dag"

    @property
    def feature_norm(self) -> str:
        """The DAG space trains on the features as they are."""
        return "none"

    @property
    def embedding_dim(self) -> int:
        return self.hidden

    @property
    def name(self) -> str:
        return ""

    def describe(self) -> str:
        return f"{list(self.link)} {','.join(self.ops)}"

    def train_config(self, base: TrainConfig) -> TrainConfig:
        """One recipe for all operators: the caller's."""
        return base

    def build(self, in_dim: int, out_dim: int) -> nn.Module:
        return DagNet(self, in_dim, out_dim)


@dataclass(frozen=True)
class Decision:
    """One choice the searchers make: a name and its options."""

    name: str
    options: tuple[Any, ...]


@dataclass(frozen=True)
class SearchSpace:
    """The decisions that define an architecture, and prior weights over their options.

    Args:
        ops: Operators the nodes may use.
        hidden: Hidden sizes to choose from (one value fixes it).
        dropout, activation, heads: Values (one value fixes it).
        prior: Optional weights per decision option ``{decision: {option: weight}}`` for sampling.
    """

    ops: tuple[str, ...] = NASBENCH_OPS
    hidden: tuple[int, ...] = (64,)
    dropout: tuple[float, ...] = (0.5,)
    activation: tuple[str, ...] = ("relu",)
    heads: tuple[int, ...] = (2,)
    prior: Mapping[str, Mapping[Any, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for op in self.ops:
            OPS.resolve(op)

    @property
    def decisions(self) -> tuple[Decision, ...]:
        links = tuple(Decision(f"link{i}", tuple(range(i + 1))) for i in range(NODES))
        ops = tuple(Decision(f"op{i}", self.ops) for i in range(NODES))
        rest = (
            Decision("hidden", self.hidden),
            Decision("dropout", self.dropout),
            Decision("activation", self.activation),
            Decision("heads", self.heads),
        )
        return links + ops + rest

    @property
    def size(self) -> int:
        """Number of distinct decision vectors (isomorphic ones included)."""
        return math.prod(len(d.options) for d in self.decisions)

    def weights(self, decision: Decision) -> list[float]:
        """Sampling weights of a decision's options: the product of the prior's table for the decision
        (``op2``) and its family (``op``); 1.0 where the prior is silent."""
        family = decision.name.rstrip("0123456789")
        tables = [self.prior.get(decision.name, {}), self.prior.get(family, {}) if family != decision.name else {}]
        return [math.prod(float(t.get(o, 1.0)) for t in tables) for o in decision.options]

    def with_prior(self, extra: Mapping[str, Mapping[Any, float]]) -> SearchSpace:
        """This space with ``extra`` weights multiplied into its prior."""
        merged: dict[str, dict[Any, float]] = {k: dict(v) for k, v in self.prior.items()}
        for name, table in extra.items():
            current = merged.setdefault(name, {})
            for option, weight in table.items():
                current[option] = current.get(option, 1.0) * float(weight)
        return SearchSpace(
            ops=self.ops,
            hidden=self.hidden,
            dropout=self.dropout,
            activation=self.activation,
            heads=self.heads,
            prior=merged,
        )

    def build(self, choice: Mapping[str, Any]) -> Architecture:
        """The architecture for a ``{decision: option}`` mapping."""
        return Architecture(
            link=tuple(int(choice[f"link{i}"]) for i in range(NODES)),
            ops=tuple(str(choice[f"op{i}"]) for i in range(NODES)),
            hidden=int(choice["hidden"]),
            dropout=float(choice["dropout"]),
            activation=str(choice["activation"]),
            heads=int(choice["heads"]),
        )

    def choice(self, arch: Architecture) -> dict[str, Any]:
        """The ``{decision: option}`` mapping of an architecture."""
        values: dict[str, Any] = {f"link{i}": arch.link[i] for i in range(NODES)}
        values.update({f"op{i}": arch.ops[i] for i in range(NODES)})
        values.update(hidden=arch.hidden, dropout=arch.dropout, activation=arch.activation, heads=arch.heads)
        return values

    def encode(self, arch: Architecture) -> list[int]:
        """Option indices, one per decision (raises if a value is outside the space)."""
        choice = self.choice(arch)
        try:
            return [d.options.index(choice[d.name]) for d in self.decisions]
        except ValueError as error:
            raise ConfigurationError(f"{arch.key()} is outside this search space: {error}") from None

    def decode(self, indices: Sequence[int]) -> Architecture:
        return self.build({d.name: d.options[i] for d, i in zip(self.decisions, indices, strict=True)})

    def sample(self, rng: random.Random, use_prior: bool = True) -> Architecture:
        """A random valid architecture (prior-weighted when ``use_prior``)."""
        for _ in range(1000):
            choice = {
                d.name: rng.choices(d.options, weights=self.weights(d) if use_prior else None)[0]
                for d in self.decisions
            }
            arch = self.build(choice)
            if arch.valid:
                return arch
        raise ConfigurationError("could not sample a valid architecture: is every op 'skip'?")

    def mutate(self, arch: Architecture, rng: random.Random) -> Architecture:
        """Change one decision (that has more than one option) to another option."""
        choice = self.choice(arch)
        free = [d for d in self.decisions if len(d.options) > 1]
        for _ in range(100):
            decision = rng.choice(free)
            others = [o for o in decision.options if o != choice[decision.name]]
            child = self.build({**choice, decision.name: rng.choice(others)})
            if child.valid:
                return child
        return arch

    def contains(self, arch: Architecture) -> bool:
        try:
            self.encode(arch)
        except ConfigurationError:
            return False
        return True


class DagNet(nn.Module):
    """The network of an :class:`Architecture`: pre-linear -> 4-node DAG -> sum of leaves -> post-linear.

    Args:
        arch: The architecture.
        in_dim: Input feature size.
        out_dim: Number of classes (node classification) or embedding size (link prediction).
    """

    def __init__(self, arch: Architecture, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.arch = arch
        self.pre = nn.Linear(in_dim, arch.hidden)
        self.cells = nn.ModuleList(OPS.resolve(op)(arch.hidden, arch.hidden, arch.heads) for op in arch.ops)
        self.post = nn.Linear(arch.hidden, out_dim)
        used = set(arch.link)
        self.leaves = [i + 1 for i in range(NODES) if (i + 1) not in used]
        self.activation = ACTIVATIONS[arch.activation]

    def _pre(self, x: Tensor) -> Tensor:
        if not x.is_sparse:
            return self.pre(nn.functional.dropout(x, self.arch.dropout, self.training))
        # Bag-of-words features are ~99% zeros: a sparse product is ~50x cheaper than the dense one on Cora.
        x = x.coalesce()
        values = nn.functional.dropout(x.values(), self.arch.dropout, self.training)
        dropped = torch.sparse_coo_tensor(x.indices(), values, x.shape, check_invariants=False)
        return torch.sparse.mm(dropped, self.pre.weight.t()) + self.pre.bias

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        drop = nn.functional.dropout
        states = [self.activation(self._pre(x))]
        for i, (cell, op) in enumerate(zip(self.cells, self.arch.ops, strict=True)):
            h = cell(drop(states[self.arch.link[i]], self.arch.dropout, self.training), edge_index)
            states.append(h if op == "skip" else self.activation(h))
        out = torch.stack([states[i] for i in self.leaves]).sum(dim=0)
        return self.post(drop(out, self.arch.dropout, self.training))


def sparse_features(x: Tensor, threshold: float = 0.5) -> Tensor:
    """``x`` as a sparse COO tensor when more than ``threshold`` of it is zeros (see ``DagNet``), else as is."""
    if x.is_sparse or x.numel() == 0:
        return x
    zeros = float((x == 0).float().mean())
    return x.to_sparse().coalesce() if zeros > threshold else x
