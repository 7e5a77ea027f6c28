"""Robust selection after a cheap screening: more seeds for the survivors, the pick by mean validation.

With one seed and a few hundred validation nodes, validation noise alone is worth about +-1.8 points on Cora, so
the best of 100 screened candidates is partly the luckiest (winner's curse). The survivors — the best screened
candidates and every baseline — are re-trained with ``select_seeds`` seeds; the pick is the best *mean* validation
(never a test score); the figure reported is its mean test score over ``report_seeds`` seeds, each taken at that
seed's best-validation epoch. Seeds a trial already has are reused, not trained again.

With ``resample`` (node classification), the survivors are scored on *folds* instead of on the fixed split's
seeds: each fold redraws the training nodes from the labelled non-test nodes and validates on the rest
(:mod:`openautoglm.core.graph.folds`), so the ranking no longer rests on which nodes one validation set happens
to hold — on a fixed split, seeds average away the training noise but not that one. The report stays on the
fixed split.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from openautoglm.core.graph.search.base import History, Score, Trial

#: ``evaluate([(candidate, seeds), ...], resample) -> [Score, ...]`` (one Score per request, with per-seed
#: ``vals``); with ``resample`` each seed trains on its fold (a redrawn train/validation split) instead.
SeedEvaluator = Callable[[Sequence[tuple[Any, tuple[int, ...]]], bool], Sequence[Score]]


@dataclass
class Runs:
    """Per-seed validation and test scores of one candidate."""

    arch: Any
    baseline: str = ""
    kind: str = "searched"  # baseline (a published recipe), searched, or tuned (the HPO's candidate)
    runs: dict[int, tuple[float, float]] = field(default_factory=dict)  # seed -> (val, test), fixed split
    folds: dict[int, tuple[float, float]] = field(default_factory=dict)  # fold -> (val, test), resampled splits
    seconds_per_seed: float = 0.0  # one training run's cost, as the screening measured it (0: not known)

    def scores(self, resampled: bool) -> dict[int, tuple[float, float]]:
        return self.folds if resampled else self.runs

    def add(self, score: Score, resampled: bool = False) -> None:
        for seed, val, test in zip(score.seeds, score.vals, score.tests, strict=True):
            self.scores(resampled)[seed] = (val, test)

    def missing(self, seeds: int, resampled: bool = False) -> tuple[int, ...]:
        return tuple(s for s in range(seeds) if s not in self.scores(resampled))

    def mean_val(self, seeds: int | None = None, resampled: bool = False) -> float:
        return statistics.mean(v for s, (v, _) in self.scores(resampled).items() if seeds is None or s < seeds)

    def summary(self, seeds: int | None = None, resampled: bool = False) -> dict[str, Any]:
        chosen = [(v, t) for s, (v, t) in sorted(self.scores(resampled).items()) if seeds is None or s < seeds]
        vals, tests = [v for v, _ in chosen], [t for _, t in chosen]
        return {
            "arch": self.arch.key(),
            "describe": self.arch.describe(),
            "baseline": self.baseline,
            "kind": self.kind,
            "seconds_per_seed": round(self.seconds_per_seed, 3),
            "seeds": len(chosen),
            "resampled": resampled,
            "val_mean": statistics.mean(vals),
            "val_std": statistics.pstdev(vals) if len(vals) > 1 else 0.0,
            "test_mean": statistics.mean(tests),
            "test_std": statistics.pstdev(tests) if len(tests) > 1 else 0.0,
        }


@dataclass(frozen=True)
class Selection:
    """The pick and how it was made.

    Attributes:
        arch: The chosen candidate; ``baseline`` its name when a baseline won.
        kind: What produced it: ``baseline`` (a published recipe), ``searched`` or ``tuned``.
        val_mean, val_std: Its validation over the selection seeds.
        final: Its score over the report seeds (``seeds``/``vals``/``tests`` per seed).
        survivors: A row per re-trained candidate (mean validation and test over the selection seeds).
        select_seeds, report_seeds: Seeds (folds, when resampled) used to pick, and seeds used to report (fewer if
            the deadline cut them).
        resampled: Whether the pick was made on folds (resampled splits) rather than on the fixed split.
        seconds: Wall time of the selection.
    """

    arch: Any
    baseline: str
    val_mean: float
    val_std: float
    final: Score
    survivors: list[dict[str, Any]]
    select_seeds: int
    report_seeds: int
    seconds: float
    resampled: bool = False
    kind: str = "searched"
    survivors_asked: int = 0  # searched survivors asked for, before the time left cut them (0: not cut)
    dropped: tuple[str, ...] = ()  # baselines not re-trained: screened more than CATCH_UP below the best


#: A request (one task run) should hold at least this much training: below it the task run's own cost (about
#: 0.2 s on this machine) is a large share, so small graphs keep a candidate's seeds together.
MIN_REQUEST_S = 2.0


def _fill(pool: list[Runs], seeds: int, evaluate: SeedEvaluator, parallel: int, resampled: bool = False) -> None:
    """Train the seeds (folds) below ``seeds`` that each candidate of ``pool`` lacks, in requests that balance the
    ``parallel`` slots: the work (seeds x each candidate's screened cost per seed) is cut into pieces of about
    a ``2 * parallel``-th of the whole (never below :data:`MIN_REQUEST_S`), submitted longest first, so no slot is
    left with one long candidate while the others idle (one request per candidate made a 5-fold GAT the whole
    tail of the selection)."""
    todo = [(runs, runs.missing(seeds, resampled)) for runs in pool]
    todo = [(runs, missing) for runs, missing in todo if missing]
    if not todo:
        return
    known = [runs.seconds_per_seed for runs, _ in todo if runs.seconds_per_seed > 0]
    fallback = statistics.median(known) if known else MIN_REQUEST_S

    def cost(runs: Runs) -> float:
        return runs.seconds_per_seed or fallback

    total = sum(cost(runs) * len(missing) for runs, missing in todo)
    target = max(total / (2 * parallel), MIN_REQUEST_S) if parallel > 1 else math.inf
    requests = []
    for runs, missing in todo:
        pieces = min(len(missing), max(1, math.ceil(cost(runs) * len(missing) / target)))
        requests += [(runs, missing[i::pieces]) for i in range(pieces)]
    requests.sort(key=lambda request: -cost(request[0]) * len(request[1]))
    scores = evaluate([(r.arch, s) for r, s in requests], resampled)
    for (runs, _), score in zip(requests, scores, strict=True):
        runs.add(score, resampled)


def _from_trial(trial: Trial) -> Runs:
    kind = "baseline" if trial.baseline else "searched"
    runs = Runs(trial.arch, trial.baseline, kind, seconds_per_seed=trial.seconds / max(len(trial.seeds), 1))
    if trial.vals:
        runs.add(Score(val=trial.val, test=trial.test, seeds=trial.seeds, vals=trial.vals, tests=trial.tests))
    return runs


def select(
    history: History,
    evaluate: SeedEvaluator,
    *,
    survivors: int = 4,
    select_seeds: int = 5,
    report_seeds: int = 10,
    deadline: float | None = None,
    extra: Sequence[Any] = (),
    parallel: int = 1,
    resample: bool = False,
) -> Selection:
    """Re-train the ``survivors`` best screened candidates and every baseline (on a clock: those within
    :data:`CATCH_UP` of the best) with ``select_seeds`` seeds, pick the best mean validation, and report the pick
    over ``report_seeds`` seeds; with a ``deadline``, survivors and seeds are first fitted to the time left
    (:func:`fit_selection`), and the report seeds are trained even past it.

    ``deadline`` (a ``time.monotonic()`` value): past it, no more selection seeds are trained; the pick is made on the
    seeds there are (the report says how many). ``extra`` candidates (a tuned one) join the survivors.
    ``parallel``: how many requests the evaluator can run at once (the seeds are split into that many at least).
    ``resample``: score the survivors on ``select_seeds`` folds (resampled train/validation splits) rather than on
    the fixed split's seeds (see the module); the report stays on the fixed split.
    """
    started = time.monotonic()
    if not history.trials:
        raise ValueError("no trials to select from")
    asked = survivors
    left = deadline - time.monotonic() if deadline is not None else None
    fit = fit_selection(history, left, survivors, select_seeds, report_seeds, parallel, len(extra))
    survivors, select_seeds, report_seeds = fit.survivors, fit.select_seeds, fit.report_seeds
    reach = max(t.val for t in history.trials) - CATCH_UP if deadline is not None else float("-inf")
    searched = [t for t in history.leaderboard(len(history.trials)) if not t.baseline and t.val >= reach][:survivors]
    kept = [t for t in history.baselines if t.baseline not in fit.dropped]
    pool = [_from_trial(t) for t in (*kept, *searched)]
    if not pool:  # survivors=0 and every baseline far below a searched best: the best screened one stays
        pool = [_from_trial(history.best)]
    pool += [Runs(arch, kind="tuned") for arch in dict.fromkeys(extra) if all(r.arch != arch for r in pool)]

    def time_left() -> bool:
        return deadline is None or time.monotonic() < deadline

    if time_left():
        _fill(pool, select_seeds, evaluate, parallel, resample)
    if resample and any(r.folds for r in pool):
        pool = [r for r in pool if r.folds]  # a candidate the deadline left without folds
    else:
        resample = False  # the deadline came first: the pick is made on the screening's fixed split
    pool = [r for r in pool if r.scores(resample)]  # an extra candidate the deadline left untrained
    used = min(select_seeds, min(len(r.scores(resample)) for r in pool))
    best = max(pool, key=lambda r: (r.mean_val(select_seeds, resample), r.baseline != ""))  # ties: the baseline
    # The report seeds were fitted to the time left (fit_selection): they are trained even past the deadline.
    _fill([best], max(report_seeds, 1), evaluate, parallel)
    chosen = sorted(best.runs.items())[: max(report_seeds, 1)]
    vals, tests = [v for _, (v, _) in chosen], [t for _, (_, t) in chosen]
    final = Score(
        val=statistics.mean(vals),
        test=statistics.mean(tests),
        val_std=statistics.pstdev(vals) if len(vals) > 1 else 0.0,
        test_std=statistics.pstdev(tests) if len(tests) > 1 else 0.0,
        seeds=tuple(s for s, _ in chosen),
        vals=tuple(vals),
        tests=tuple(tests),
    )
    summary = best.summary(select_seeds, resample)
    return Selection(
        arch=best.arch,
        baseline=best.baseline,
        val_mean=summary["val_mean"],
        val_std=summary["val_std"],
        final=final,
        survivors=sorted((r.summary(select_seeds, resample) for r in pool), key=lambda row: -row["val_mean"]),
        select_seeds=used,
        report_seeds=len(chosen),
        seconds=time.monotonic() - started,
        resampled=resample,
        kind=best.kind,
        survivors_asked=asked if survivors < asked else 0,
        dropped=fit.dropped,
    )


#: A screened candidate this far below the best screened validation score is not re-trained by the selection: it
#: cannot catch up (one seed on a few dozen validation nodes is worth about +-5 points; on hundreds, +-2).
CATCH_UP = 0.10


@dataclass(frozen=True)
class SelectionFit:
    """How much re-training the time left allows (see :func:`fit_selection`)."""

    survivors: int
    select_seeds: int
    report_seeds: int
    dropped: tuple[str, ...] = ()  # baselines left out: screened more than CATCH_UP below the best


def fit_selection(
    history: History,
    seconds_left: float | None,
    survivors: int,
    select_seeds: int,
    report_seeds: int,
    parallel: int = 1,
    extra: int = 0,
) -> SelectionFit:
    """Successive halving of the screening into the selection, by each candidate's measured cost.

    When ``seconds_left`` is given (a search on a clock), every candidate screened more than :data:`CATCH_UP`
    below the best is dropped first (baselines included; any recipe within reach stays), then the most ``(survivors,
    select_seeds, report_seeds)`` whose re-training fits it: searched survivors go first (down to 1), then seeds
    (down to 2), then report seeds (down to 3). The estimate is ``sum(cost per seed x seeds) / parallel`` plus
    the slowest candidate's ``report_seeds`` runs.
    """
    if not history.trials:
        return SelectionFit(survivors, select_seeds, report_seeds)
    best = max(t.val for t in history.trials)
    # Only a search on a clock drops anyone: one lucky screening seed can put the best far above the others.
    reach = best - CATCH_UP if seconds_left is not None else float("-inf")
    dropped = tuple(t.baseline for t in history.baselines if t.val < reach)

    def per_seed(trial: Trial) -> float:
        return trial.seconds / max(len(trial.seeds), 1)

    base = [per_seed(t) for t in history.baselines if t.baseline not in dropped]
    ranked = [t for t in history.leaderboard(len(history.trials)) if not t.baseline and t.val >= reach]
    searched = [per_seed(t) for t in ranked]
    survivors = min(survivors, len(searched)) if not extra else survivors
    if seconds_left is None:
        return SelectionFit(survivors, select_seeds, report_seeds, dropped)
    known = base + searched or [per_seed(t) for t in history.trials]
    typical, slowest = statistics.median(known), max(known)

    def cost(n: int, seeds: int, reports: int) -> float:
        return ((sum(base) + sum(searched[:n]) + extra * typical) * seeds + slowest * reports) / max(parallel, 1)

    for reports in range(report_seeds, min(report_seeds, 3) - 1, -1):
        for seeds in range(select_seeds, min(select_seeds, 2) - 1, -1):
            for n in range(survivors, min(survivors, 1) - 1, -1):
                if cost(n, seeds, reports) <= seconds_left:
                    return SelectionFit(n, seeds, reports, dropped)
    return SelectionFit(min(survivors, 1), min(select_seeds, 2), min(report_seeds, 3), dropped)
