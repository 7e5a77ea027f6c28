"""What every candidate network and every search space provide, and reading candidates back from JSON.

Two kinds of candidate exist: :class:`~openautoglm.core.graph.space.Architecture` (NAS-Bench-Graph's DAG, for
lookup-table benchmarks and its trained twin) and :class:`~openautoglm.core.graph.stack.StackArch` (the trained
space of layer stacks with per-family recipes, where the textbook baselines live). Searchers, the trainer and the
flows only use the protocols below.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Protocol

from torch import nn

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.graph.config import TrainConfig
from openautoglm.core.graph.space import Architecture, Decision
from openautoglm.core.graph.stack import StackArch
from openautoglm.core.registry import Registry


class Candidate(Hashable, Protocol):
    """A frozen, hashable network description that can build itself and name its training recipe."""

    kind: str

    @property
    def valid(self) -> bool: ...

    @property
    def feature_norm(self) -> str: ...

    @property
    def embedding_dim(self) -> int: ...

    @property
    def name(self) -> str: ...

    def key(self) -> str: ...

    def describe(self) -> str: ...

    def as_dict(self) -> dict[str, Any]: ...

    def to_json(self) -> str: ...

    def train_config(self, base: TrainConfig) -> TrainConfig: ...

    def build(self, in_dim: int, out_dim: int) -> nn.Module: ...


class Space(Protocol):
    """The decisions searchers make, and the map between decision vectors and candidates."""

    @property
    def decisions(self) -> tuple[Decision, ...]: ...

    @property
    def size(self) -> int: ...

    def weights(self, decision: Decision) -> list[float]: ...

    def build(self, choice: Mapping[str, Any]) -> Any: ...

    def choice(self, arch: Any) -> dict[str, Any]: ...

    def encode(self, arch: Any) -> list[int]: ...

    def decode(self, indices: Sequence[int]) -> Any: ...

    def sample(self, rng: random.Random, use_prior: bool = True) -> Any: ...

    def mutate(self, arch: Any, rng: random.Random) -> Any: ...

    def contains(self, arch: Any) -> bool: ...


#: Candidate readers by kind (the ``kind`` key of ``as_dict``; the DAG's dictionaries have none).
KINDS: Registry[Callable[[Mapping[str, Any]], Any]] = Registry("candidate kind")
KINDS.add("dag", Architecture.from_dict)
KINDS.add("stack", StackArch.from_dict)


def candidate_from_dict(value: Mapping[str, Any]) -> Candidate:
    """The candidate ``value`` describes (``as_dict`` of either kind)."""
    kind = str(value.get("kind", "dag"))
    try:
        reader = KINDS.resolve(kind)
    except ValueError as error:
        raise ConfigurationError(f"unknown candidate kind '{kind}'", hint=str(error)) from None
    result: Candidate = reader(value)
    return result
