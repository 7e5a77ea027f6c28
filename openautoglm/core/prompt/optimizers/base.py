"""What every optimiser shares: the evaluation of a candidate, the search context, and the registry.

An optimiser is ``search(start: TaskConfig, context: SearchContext) -> None``: it proposes candidate
configurations (template, verbalisers, few-shot examples) from ``start``, scores them through
``context.evaluate`` (in rounds, which the caller may run in parallel) and stops when the context says the
budget is spent. Everything scored is in ``context.history``; the best is ``context.best()``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from openautoglm.core.nlp.prompts import Message
from openautoglm.core.nlp.types import Example, TaskConfig
from openautoglm.core.registry import Registry

BackendKind = Literal["embedding", "generative", "tagger"]


@dataclass(frozen=True)
class Mistake:
    """A dev example the candidate got wrong (shown to a generative proposer)."""

    text: str
    gold: str
    predicted: str | None


@dataclass(frozen=True)
class Evaluation:
    """One candidate scored on a set of examples.

    Attributes:
        config: The candidate.
        score: The task's dev metric (accuracy, entity F1, Spearman); ``None`` when the budget stopped it.
        calls, tokens, seconds: What scoring it cost: requests new to this search (the budget's count), their
            tokens, and the time taken.
        fresh_calls: Calls actually sent to the model (the rest came from the call cache).
        failed: Rows without a usable answer.
        origin: Which optimiser step proposed it (``start``, ``mutation``, ``few_shot:k=8`` ...).
        mistakes: Up to a few wrongly answered examples.
        correct: Per example, whether the answer was right (in the order given).
    """

    config: TaskConfig
    score: float | None
    calls: int = 0
    tokens: int = 0
    seconds: float = 0.0
    fresh_calls: int = 0
    failed: int = 0
    origin: str = ""
    mistakes: tuple[Mistake, ...] = ()
    correct: tuple[bool, ...] = ()

    @property
    def complete(self) -> bool:
        return self.score is not None


#: Scores a round of candidates on the dev set, or on ``examples`` when given (e.g. a train sample).
Evaluate = Callable[[Sequence[TaskConfig], Sequence[str], Sequence[Example] | None], list[Evaluation]]
#: A generative model's answer to a chat (for instruction proposals).
Propose = Callable[[list[Message]], str]


@dataclass
class SearchContext:
    """What an optimiser works with.

    Attributes:
        evaluate: Scores a round of candidates (see :data:`Evaluate`); sets no state itself.
        calls_left: Model calls left in the budget.
        trainset: Labelled examples to draw demonstrations, prototypes and verbalisers from (never the dev or
            test rows).
        kind: The task model's kind: ``embedding`` (verbalisers and prototypes matter), ``generative``
            (instructions and demonstrations matter) or ``tagger``.
        seed: Seeds every random choice.
        propose: A generative model for new instructions, if there is one.
        round_size: Candidates per round (evaluated together, in parallel where the caller can).
        reserve: Calls to leave unspent (a combined optimiser gives the next stage its share this way).
    """

    evaluate: Evaluate
    calls_left: Callable[[], int]
    trainset: tuple[Example, ...]
    kind: BackendKind
    seed: int = 0
    propose: Propose | None = None
    round_size: int = 4
    reserve: int = 0
    history: list[Evaluation] = field(default_factory=list)
    exhausted: bool = False
    stop_reason: str = ""
    _seen: dict[TaskConfig, Evaluation] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def can_continue(self) -> bool:
        """False once the budget is spent (or down to the reserve)."""
        if self.exhausted:
            return False
        if self.calls_left() <= self.reserve:
            self.stop_reason = self.stop_reason or (
                "budget reached" if self.reserve == 0 else "this stage's share of the budget is spent"
            )
            return False
        return True

    def score(self, candidates: Sequence[TaskConfig], origins: Sequence[str]) -> list[Evaluation]:
        """Score candidates not scored before (earlier results are reused); records them in ``history``."""
        fresh: list[TaskConfig] = []
        fresh_origins: list[str] = []
        for config, origin in zip(candidates, origins, strict=True):
            if config not in self._seen and config not in fresh:
                fresh.append(config)
                fresh_origins.append(origin)
        if fresh and self.can_continue():
            for evaluation in self.evaluate(fresh, fresh_origins, None):
                if evaluation.complete:
                    self._seen[evaluation.config] = evaluation
                    self.history.append(evaluation)
                else:
                    self.exhausted = True
                    self.stop_reason = "budget reached"
        return [self._seen[c] for c in candidates if c in self._seen]

    def best(self) -> Evaluation | None:
        """The highest-scoring candidate (the earliest among equals)."""
        done = [e for e in self.history if e.score is not None]
        return max(done, key=lambda e: e.score or 0.0) if done else None

    def best_config(self, fallback: TaskConfig) -> TaskConfig:
        best = self.best()
        return best.config if best is not None else fallback

    def with_reserve(self, reserve: int) -> SearchContext:
        """The same search (shared history) that stops ``reserve`` calls before the cap."""
        self.reserve = reserve
        self.exhausted = self.exhausted and self.calls_left() <= 0
        return self


Optimizer = Callable[[TaskConfig, SearchContext], None]

#: Optimisers by name.
OPTIMIZERS: Registry[Optimizer] = Registry("prompt optimizer")


def examples_by_label(trainset: Sequence[Example]) -> dict[str, list[Example]]:
    grouped: dict[str, list[Example]] = {}
    for example in trainset:
        grouped.setdefault(example.label, []).append(example)
    return grouped
