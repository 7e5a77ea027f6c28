"""The searcher contract (ask/tell), trials and histories, and the driver that spends a budget in rounds.

A searcher proposes architectures (``ask(n)``) and learns from their rewards (``tell``). The driver asks for a
round of ``parallel`` architectures at a time, evaluates the round together (the flow runs it on Dask), and counts
only distinct architectures against the budget: asking again for one already evaluated returns its reward for free.
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from openautoglm.core.graph.space import Architecture, SearchSpace
from openautoglm.core.registry import Registry


@dataclass(frozen=True)
class Trial:
    """One evaluated architecture.

    Attributes:
        index: 0-based order of evaluation.
        round: The round it was proposed in.
        arch: The architecture.
        val, test: Validation and test score (means over seeds); ``val`` is the reward.
        val_std, test_std: Standard deviations over seeds (0 for one seed or a lookup).
        seconds: Time to evaluate.
        extra: Anything else the evaluator reports (params, latency, epochs...).
    """

    index: int
    round: int
    arch: Architecture
    val: float
    test: float
    val_std: float = 0.0
    test_std: float = 0.0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    """What an evaluator returns for one architecture."""

    val: float
    test: float
    val_std: float = 0.0
    test_std: float = 0.0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


BatchEvaluator = Callable[[Sequence[Architecture]], Sequence[Score]]


@dataclass
class History:
    """All trials of a search, in order."""

    trials: list[Trial] = field(default_factory=list)
    asked: int = 0
    seconds: float = 0.0

    @property
    def best(self) -> Trial:
        """The trial with the best validation score (earliest on ties)."""
        if not self.trials:
            raise ValueError("no trials yet")
        return max(self.trials, key=lambda t: (t.val, -t.index))

    def best_so_far(self) -> list[float]:
        """Best validation score after each trial."""
        out, best = [], float("-inf")
        for t in self.trials:
            best = max(best, t.val)
            out.append(best)
        return out

    def test_of_best_so_far(self) -> list[float]:
        """Test score of the best-validation trial after each trial (what a user would deploy)."""
        out: list[float] = []
        best: Trial | None = None
        for t in self.trials:
            if best is None or t.val > best.val:
                best = t
            out.append(best.test)
        return out

    def leaderboard(self, n: int = 10) -> list[Trial]:
        return sorted(self.trials, key=lambda t: (-t.val, t.index))[:n]


class Searcher(ABC):
    """A search algorithm over a :class:`SearchSpace`. Hyper-parameters in ``__init__``; seeded.

    Args:
        space: The space (with its prior, which searchers use for their first proposals).
        seed: Seed of every random choice the searcher makes.
        warm_start: Architectures to propose first (e.g. from a transfer prior).
    """

    def __init__(self, space: SearchSpace, seed: int = 0, warm_start: Sequence[Architecture] = ()) -> None:
        self.space = space
        self.seed = seed
        self.rng = random.Random(seed)
        self.warm_start = [a for a in warm_start if space.contains(a)]

    def ask(self, n: int) -> list[Architecture]:
        """``n`` architectures to evaluate next (warm-start ones first)."""
        head, self.warm_start = self.warm_start[:n], self.warm_start[n:]
        return head + self.propose(n - len(head))

    @abstractmethod
    def propose(self, n: int) -> list[Architecture]:
        """``n`` new proposals."""

    @abstractmethod
    def tell(self, arch: Architecture, reward: float) -> None:
        """The reward (validation score) of an architecture this searcher proposed."""


#: Searchers by name.
SEARCHERS: Registry[type[Searcher]] = Registry("search algorithm", base=Searcher)


def run_search(
    searcher: Searcher,
    evaluate: BatchEvaluator,
    budget: int,
    parallel: int = 1,
    on_trial: Callable[[Trial], None] | None = None,
    time_budget_s: float | None = None,
) -> History:
    """Spend ``budget`` distinct evaluations (or ``time_budget_s``), ``parallel`` per round.

    Repeated proposals are told their known reward without spending budget; at most ``20 * budget`` proposals
    are asked in all, so a converged searcher cannot loop for ever.
    """
    history = History()
    known: dict[Architecture, Score] = {}
    started = time.perf_counter()
    round_number = 0
    while len(history.trials) < budget and history.asked < 20 * budget:
        if time_budget_s is not None and time.perf_counter() - started > time_budget_s:
            break
        want = min(parallel, budget - len(history.trials))
        proposals = searcher.ask(want)
        history.asked += len(proposals)
        fresh: list[Architecture] = []
        for arch in proposals:
            if arch in known:
                searcher.tell(arch, known[arch].val)
            elif arch not in fresh:
                fresh.append(arch)
        if not fresh:
            continue
        scores = evaluate(fresh)
        for arch, score in zip(fresh, scores, strict=True):
            known[arch] = score
            trial = Trial(
                index=len(history.trials),
                round=round_number,
                arch=arch,
                val=score.val,
                test=score.test,
                val_std=score.val_std,
                test_std=score.test_std,
                seconds=score.seconds,
                extra=score.extra,
            )
            history.trials.append(trial)
            searcher.tell(arch, score.val)
            if on_trial is not None:
                on_trial(trial)
        round_number += 1
    history.seconds = time.perf_counter() - started
    return history


def search(
    space: SearchSpace,
    evaluate: BatchEvaluator,
    budget: int,
    seed: int = 0,
    algo: str = "random",
    parallel: int = 1,
    warm_start: Sequence[Architecture] = (),
    **options: Any,
) -> History:
    """``search(space, evaluator, budget, seed) -> history`` with the named algorithm."""
    searcher = SEARCHERS.resolve(algo)(space, seed=seed, warm_start=warm_start, **options)
    return run_search(searcher, evaluate, budget, parallel=parallel)
