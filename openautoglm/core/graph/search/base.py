"""The searcher contract (ask/tell), trials and histories, and the driver that keeps trials in flight.

A searcher proposes candidates (``ask(n)``) and learns from their rewards (``tell``). The driver first submits
the canonical baselines (they count against the budget and stay on the leaderboard, so a search never reports
less than its best baseline), then keeps ``parallel`` trials in flight: as soon as one finishes it is told to the
searcher and the next candidate is proposed, so no trial waits for the slowest of a round. Only distinct
candidates count against the budget: asking again for one already evaluated returns its reward for free. A trial
whose evaluation fails (a worker that died) is submitted again, up to ``max_attempts``; it is never dropped.

Executors (:class:`Executor`) say where trials run: :class:`BatchExecutor` evaluates what was submitted together
in this process (lookup tables, the SDK), :class:`PoolExecutor` runs them on a ``concurrent.futures`` pool, and
the flow's executor submits Prefect tasks to Dask.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from openautoglm.core.errors import OpenAutoGLMError
from openautoglm.core.graph.candidates import Candidate, Space
from openautoglm.core.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Score:
    """What an evaluator returns for one candidate (``seeds``/``vals``/``tests``: per training seed, if any)."""

    val: float
    test: float
    val_std: float = 0.0
    test_std: float = 0.0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = ()
    vals: tuple[float, ...] = ()
    tests: tuple[float, ...] = ()


@dataclass(frozen=True)
class Trial:
    """One evaluated candidate.

    Attributes:
        index: 0-based order of completion.
        round: How many completions had been seen when it was submitted (0 for the first wave).
        arch: The candidate.
        val, test: Validation and test score (means over seeds); ``val`` is the reward.
        val_std, test_std: Standard deviations over seeds (0 for one seed or a lookup).
        seconds: Time to evaluate.
        extra: Anything else the evaluator reports (params, latency, epochs...).
        baseline: The baseline's name ("gcn-pyg"), or "" for a searched candidate.
        attempts: Evaluations it took (more than 1 when a worker died under it).
        seeds, vals, tests: Per-seed scores, when the evaluator gives them.
    """

    index: int
    round: int
    arch: Any
    val: float
    test: float
    val_std: float = 0.0
    test_std: float = 0.0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    baseline: str = ""
    attempts: int = 1
    seeds: tuple[int, ...] = ()
    vals: tuple[float, ...] = ()
    tests: tuple[float, ...] = ()


BatchEvaluator = Callable[[Sequence[Any]], Sequence[Score]]


class TrialLostError(OpenAutoGLMError):
    """A trial failed ``max_attempts`` times in a row."""


@dataclass
class History:
    """All trials of a search, in order of completion.

    Attributes:
        asked: Proposals asked of the searcher (repeats included).
        seconds: Wall time of the search.
        resubmitted: Evaluations submitted again after a failure (a worker lost).
        max_in_flight: The most trials that were in flight at once.
        stopped: Why the search ended: ``budget``, ``time`` or ``exhausted`` (the searcher only repeats itself).
    """

    trials: list[Trial] = field(default_factory=list)
    asked: int = 0
    seconds: float = 0.0
    resubmitted: int = 0
    max_in_flight: int = 0
    stopped: str = "budget"

    @property
    def best(self) -> Trial:
        """The trial with the best validation score (earliest on ties)."""
        if not self.trials:
            raise ValueError("no trials yet")
        return max(self.trials, key=lambda t: (t.val, -t.index))

    @property
    def baselines(self) -> list[Trial]:
        return [t for t in self.trials if t.baseline]

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

    def leaderboard(self, n: int = 10, *, with_baselines: bool = False) -> list[Trial]:
        """The best ``n`` trials by validation; ``with_baselines``: every baseline too (they stay on the board)."""
        top = sorted(self.trials, key=lambda t: (-t.val, t.index))[:n]
        return top + [t for t in self.baselines if t not in top] if with_baselines else top


class Searcher(ABC):
    """A search algorithm over a search space. Hyper-parameters in ``__init__``; seeded.

    Args:
        space: The space (with its prior, which searchers use for their first proposals).
        seed: Seed of every random choice the searcher makes.
        warm_start: Candidates to propose first (e.g. from a transfer prior).
    """

    def __init__(self, space: Space, seed: int = 0, warm_start: Sequence[Any] = ()) -> None:
        self.space = space
        self.seed = seed
        self.rng = random.Random(seed)
        self.warm_start = [a for a in warm_start if space.contains(a)]

    def ask(self, n: int) -> list[Any]:
        """``n`` candidates to evaluate next (warm-start ones first)."""
        head, self.warm_start = self.warm_start[:n], self.warm_start[n:]
        return head + self.propose(n - len(head))

    @abstractmethod
    def propose(self, n: int) -> list[Any]:
        """``n`` new proposals."""

    @abstractmethod
    def tell(self, arch: Any, reward: float) -> None:
        """The reward (validation score) of a candidate of this searcher's space."""


#: Searchers by name.
SEARCHERS: Registry[type[Searcher]] = Registry("search algorithm", base=Searcher)


Outcome = Score | BaseException


class Executor(ABC):
    """Where trials run: ``submit`` one candidate, ``wait`` for at least one to finish."""

    @abstractmethod
    def submit(self, arch: Candidate) -> None:
        """Start evaluating ``arch``."""

    @abstractmethod
    def wait(self) -> list[tuple[Candidate, Outcome]]:
        """Block until at least one submitted candidate finishes; all finished ones with their score (or the
        exception that ended them). Only called while something is in flight."""


class BatchExecutor(Executor):
    """Evaluates what was submitted since the last ``wait`` together, in this process (one call of ``evaluate``)."""

    def __init__(self, evaluate: BatchEvaluator) -> None:
        self.evaluate = evaluate
        self.queued: list[Candidate] = []

    def submit(self, arch: Candidate) -> None:
        self.queued.append(arch)

    def wait(self) -> list[tuple[Candidate, Outcome]]:
        batch, self.queued = self.queued, []
        try:
            scores: Sequence[Outcome] = list(self.evaluate(batch))
        except Exception as error:  # the whole batch failed: each is retried alone
            scores = [error] * len(batch)
        return list(zip(batch, scores, strict=True))


class PoolExecutor(Executor):
    """Trials on a ``concurrent.futures`` pool (threads or processes): ``evaluate_one(arch) -> Score``."""

    def __init__(self, pool: cf.Executor, evaluate_one: Callable[[Any], Score]) -> None:
        self.pool = pool
        self.evaluate_one = evaluate_one
        self.futures: dict[cf.Future[Score], Candidate] = {}

    def submit(self, arch: Candidate) -> None:
        self.futures[self.pool.submit(self.evaluate_one, arch)] = arch

    def wait(self) -> list[tuple[Candidate, Outcome]]:
        done, _ = cf.wait(list(self.futures), return_when=cf.FIRST_COMPLETED)
        out: list[tuple[Candidate, Outcome]] = []
        for future in done:
            arch = self.futures.pop(future)
            error = future.exception()
            out.append((arch, error if error is not None else future.result()))
        return out


def run_search(
    searcher: Searcher,
    evaluate: BatchEvaluator | Executor,
    budget: int,
    parallel: int = 1,
    on_trial: Callable[[Trial], None] | None = None,
    time_budget_s: float | None = None,
    baselines: Sequence[Candidate] = (),
    max_attempts: int = 3,
) -> History:
    """Spend ``budget`` distinct evaluations (or ``time_budget_s``) with ``parallel`` trials in flight.

    ``baselines`` are submitted before any proposal; they count against the budget (which grows to hold them all)
    and are told to the searcher when its space contains them. Repeated proposals are told their known reward
    without spending budget; at most ``20 * budget`` proposals are asked in all, so a converged searcher cannot
    loop for ever. When the time budget is spent no new proposal starts (baselines still queued do) and those in
    flight finish.

    Raises:
        TrialLostError: A trial failed ``max_attempts`` times (its last error chained).
    """
    executor = evaluate if isinstance(evaluate, Executor) else BatchExecutor(evaluate)
    history = History()
    known: dict[Candidate, Score] = {}
    in_flight: dict[Candidate, int] = {}  # candidate -> attempts so far
    waiting: dict[Candidate, int] = {}  # candidate -> proposals of it still to be told
    names = {arch: (getattr(arch, "name", "") or arch.key()) for arch in baselines}
    queue = list(dict.fromkeys(baselines))
    total = max(budget, len(queue))
    started = time.perf_counter()
    completions = 0
    submitted_round: dict[Candidate, int] = {}

    def tell(arch: Candidate, reward: float) -> None:
        if arch not in names or searcher.space.contains(arch):
            searcher.tell(arch, reward)

    def submit(arch: Candidate) -> None:
        in_flight[arch] = in_flight.get(arch, 0) + 1
        submitted_round.setdefault(arch, completions)
        executor.submit(arch)
        history.max_in_flight = max(history.max_in_flight, len(in_flight))

    while True:
        out_of_time = time_budget_s is not None and time.perf_counter() - started > time_budget_s
        # Baselines are the floor the pick is held to: they are all trained even when the time budget is spent.
        while (not out_of_time or queue) and len(in_flight) < parallel and len(history.trials) + len(in_flight) < total:
            if queue:
                submit(queue.pop(0))
                continue
            if history.asked >= 20 * total:
                history.stopped = "exhausted"
                break
            want = min(parallel - len(in_flight), total - len(history.trials) - len(in_flight))
            proposals = searcher.ask(want)
            history.asked += len(proposals)
            for arch in proposals:
                if arch in known:
                    tell(arch, known[arch].val)
                elif arch in in_flight:
                    waiting[arch] = waiting.get(arch, 0) + 1
                elif len(in_flight) < parallel and len(history.trials) + len(in_flight) < total:
                    waiting[arch] = waiting.get(arch, 0) + 1
                    submit(arch)
                # else: more proposals than free slots (a searcher may ignore n); it is asked again later
        if out_of_time:
            history.stopped = "time"
        if not in_flight:
            break
        for arch, outcome in executor.wait():
            completions += 1
            if isinstance(outcome, BaseException):
                attempts = in_flight[arch]
                if attempts >= max_attempts:
                    raise TrialLostError(
                        f"the trial of {arch.key()} failed {attempts} times: {type(outcome).__name__}: {outcome}",
                        hint="see the worker logs; a dying worker is retried, a failing candidate is a bug to report",
                    ) from outcome
                log.warning("trial of %s failed (%s); submitting it again", arch.key(), outcome)
                history.resubmitted += 1
                in_flight[arch] = attempts + 1
                executor.submit(arch)
                continue
            attempts = in_flight.pop(arch)
            known[arch] = outcome
            trial = Trial(
                index=len(history.trials),
                round=submitted_round.get(arch, 0),
                arch=arch,
                val=outcome.val,
                test=outcome.test,
                val_std=outcome.val_std,
                test_std=outcome.test_std,
                seconds=outcome.seconds,
                extra=outcome.extra,
                baseline=names.get(arch, ""),
                attempts=attempts,
                seeds=outcome.seeds,
                vals=outcome.vals,
                tests=outcome.tests,
            )
            history.trials.append(trial)
            for _ in range(max(1, waiting.pop(arch, 0))):
                tell(arch, outcome.val)
            if on_trial is not None:
                on_trial(trial)
    history.seconds = time.perf_counter() - started
    return history


def search(
    space: Space,
    evaluate: BatchEvaluator | Executor,
    budget: int,
    seed: int = 0,
    algo: str = "random",
    parallel: int = 1,
    warm_start: Sequence[Any] = (),
    baselines: Sequence[Candidate] = (),
    **options: Any,
) -> History:
    """``search(space, evaluator, budget, seed) -> history`` with the named algorithm."""
    searcher = SEARCHERS.resolve(algo)(space, seed=seed, warm_start=warm_start, **options)
    return run_search(searcher, evaluate, budget, parallel=parallel, baselines=baselines)
