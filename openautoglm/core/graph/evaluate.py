"""Evaluating candidates by training them: K seeds each, validation and test mean and standard deviation."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from torch_geometric.data import Data

from openautoglm.core.graph.candidates import Candidate
from openautoglm.core.graph.folds import resample_split
from openautoglm.core.graph.pruning import MedianStopping
from openautoglm.core.graph.search.base import Score
from openautoglm.core.graph.trainer import (
    GraphTask,
    Report,
    TrainConfig,
    TrainResult,
    train_link_predictor,
    train_node_classifier,
)


def combine(runs: Sequence[TrainResult], seeds: Sequence[int]) -> Score:
    """One :class:`Score` from training runs (one per seed): means, population standard deviations, per seed."""
    vals, tests = [r.val for r in runs], [r.test for r in runs]
    extra: dict[str, object] = {"params": runs[0].params, "epochs": statistics.mean(r.epochs for r in runs)}
    extra["best_epoch"] = statistics.mean(r.best_epoch for r in runs)
    for key in runs[0].extra:
        extra[key] = statistics.mean(r.extra[key] for r in runs)
    return Score(
        val=statistics.mean(vals),
        test=statistics.mean(tests),
        val_std=statistics.pstdev(vals) if len(vals) > 1 else 0.0,
        test_std=statistics.pstdev(tests) if len(tests) > 1 else 0.0,
        seconds=sum(r.seconds for r in runs),
        extra=extra,
        seeds=tuple(seeds),
        vals=tuple(vals),
        tests=tuple(tests),
    )


@dataclass(frozen=True)
class TrainingEvaluator:
    """Scores candidates by real training.

    Args:
        task: ``node`` (accuracy) or ``link`` (AUC).
        data: For ``node``, a ``Data`` with masks; for ``link``, the (train, val, test) triple of RandomLinkSplit.
        config: Optimiser and early-stopping settings (a candidate's own recipe replaces them).
        seeds: One training run per seed; scores are their mean.
        pruner: Median stopping for searched candidates (those without a ``name``) in :meth:`score`; baselines,
            the selection's folds and the tuning are never pruned by it.
    """

    task: GraphTask
    data: Data | tuple[Data, Data, Data]
    config: TrainConfig = field(default_factory=TrainConfig)
    seeds: tuple[int, ...] = (0,)
    pruner: MedianStopping | None = None

    def run(
        self,
        arch: Candidate,
        seed: int,
        report: Report | None = None,
        keep_model: bool = False,
        resample: bool = False,
    ) -> TrainResult:
        """One training run (``report`` lets a tuner prune it; ``keep_model`` returns the trained network;
        ``resample`` trains and validates on fold ``seed`` — a redrawn train/validation split — instead)."""
        if self.task == "node":
            if not isinstance(self.data, Data):
                raise TypeError("node classification needs one Data with masks")
            data = resample_split(self.data, seed) if resample else self.data
            return train_node_classifier(arch, data, self.config, seed, report, keep_model)
        if resample:
            raise ValueError("resampled folds are for node classification; link prediction keeps its split")
        if isinstance(self.data, Data):
            raise TypeError("link prediction needs the (train, val, test) split")
        train, val, test = self.data
        return train_link_predictor(arch, train, val, test, self.config, seed, report, keep_model)

    def score(self, arch: Candidate, seeds: Sequence[int] | None = None, resample: bool = False) -> Score:
        chosen = tuple(self.seeds if seeds is None else seeds)
        if self.pruner is None or resample or seeds is not None or arch.name:
            return combine([self.run(arch, seed, resample=resample) for seed in chosen], chosen)
        runs = []
        for seed in chosen:
            report, curve = self.pruner.reporter()
            runs.append(self.run(arch, seed, report=report))
            self.pruner.finish(curve)
        return combine(runs, chosen)

    def __call__(self, archs: Sequence[Candidate]) -> list[Score]:
        return [self.score(a) for a in archs]
