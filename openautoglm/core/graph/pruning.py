"""Median stopping for the screening: a searched candidate whose validation curve falls below the median of the
finished candidates' curves at the same epoch stops there (Golovin et al., "Google Vizier", KDD 2017; the rule
Optuna's ``MedianPruner`` applies to its trials).

A candidate that cannot catch the typical finished one stops after ``warmup`` epochs instead of running its full
recipe (up to 1,000 epochs for GPR-GNN); it keeps its best-validation state, so its score is what it reached.
Published recipes (baselines) are never pruned: they are reported as published. Thread-safe: the SDK screens
candidates on threads of one process.
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass, field

from openautoglm.core.graph.trainer import Report


@dataclass
class MedianStopping:
    """Median stopping over the best-so-far validation curves of finished trials.

    Args:
        warmup: Epochs every candidate trains before it can be stopped.
        min_finished: Finished curves needed before the rule applies.
    """

    warmup: int = 30
    min_finished: int = 3
    finished: list[dict[int, float]] = field(default_factory=list)
    stopped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def median_at(self, epoch: int) -> float | None:
        """The median best-so-far validation of the finished curves that reached ``epoch`` (None: too few)."""
        with self._lock:
            values = [_best_until(curve, epoch) for curve in self.finished if max(curve, default=0) >= epoch]
        return statistics.median(values) if len(values) >= self.min_finished else None

    def reporter(self) -> tuple[Report, dict[int, float]]:
        """A ``report(epoch, val) -> stop`` for one training run, and the curve it records."""
        curve: dict[int, float] = {}
        best = [float("-inf")]

        def report(epoch: int, val: float) -> bool:
            curve[epoch] = val
            best[0] = max(best[0], val)
            if epoch < self.warmup:
                return False
            median = self.median_at(epoch)
            if median is not None and best[0] < median:
                with self._lock:
                    self.stopped += 1
                return True
            return False

        return report, curve

    def finish(self, curve: dict[int, float]) -> None:
        """Record a finished run's curve (a stopped run's curve is kept too: it is what that candidate reached)."""
        if curve:
            with self._lock:
                self.finished.append(dict(curve))


def _best_until(curve: dict[int, float], epoch: int) -> float:
    return max(v for e, v in curve.items() if e <= epoch)
