"""Prediction, written once: a frame's rows in batches through a model, whatever runs the batches.

``TaskPipeline.run`` (threads in this process), the ``infer`` stage (in order, inside one task run) and the
``run_task`` flow (one task run per batch on Dask) are callers: they differ only in the :class:`Executor` they
pass to :func:`predict`. The batches, the tally of counts, the row check and the joined output frame are here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.models.base import BatchStats
from openautoglm.core.data.schema import ROW_ID
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.batching import batches, frame_rows
from openautoglm.core.nlp.results import results_frame
from openautoglm.core.nlp.types import Row, RowResult

Batch = tuple[Row, ...]
PredictBatch = Callable[[list[Row]], tuple[list[RowResult], BatchStats]]


def plan_batches(frame: pd.DataFrame, text_column: str, text_pair_column: str | None, size: int) -> list[Batch]:
    """The frame's rows (text, and the second text for matching) as model batches of ``size`` rows."""
    return batches(frame_rows(frame, text_column, text_pair_column), size)


@dataclass(frozen=True)
class Ran:
    """One batch, done: what the next steps receive for it (``handle``: a Prefect future, so they record it as a
    data dependency, or the output itself), its results in row order, its counts, and whether it was a cached
    result (then its calls were made by an earlier run)."""

    handle: Any
    results: list[RowResult]
    counts: BatchStats
    cached: bool = False


class Executor(Protocol):
    """Runs the batches and yields each one's :class:`Ran`, in the order of ``work``."""

    def __call__(self, work: Sequence[Batch]) -> Iterable[Ran]: ...


@dataclass
class Prediction:
    """Every row's result in order, each batch's handle, and the run's counts (a cached batch counts as zero
    calls and one cache hit per row)."""

    outputs: list[Any] = field(default_factory=list)
    results: list[RowResult] = field(default_factory=list)
    stats: BatchStats = field(default_factory=BatchStats)
    cached_batches: int = 0

    @property
    def rows(self) -> int:
        return len(self.results)

    def joined(self, frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
        """``frame``'s rows with the result columns (see :func:`joined`)."""
        return joined(frame, self.results, spec)


def predict(work: Sequence[Batch], execute: Executor, *, progress: Callable[[int], None] | None = None) -> Prediction:
    """Run ``work`` with ``execute``; ``progress`` gets the rows done so far. Fewer or more results than rows sent
    is an error (a batch must answer every row, a failed row with its reason)."""
    done = Prediction()
    for ran in execute(work):
        done.outputs.append(ran.handle)
        done.results.extend(ran.results)
        if ran.cached:
            done.cached_batches += 1
        done.stats = done.stats.merge(BatchStats(cache_hits=len(ran.results)) if ran.cached else ran.counts)
        if progress is not None:
            progress(done.rows)
    expected = sum(len(batch) for batch in work)
    if done.rows != expected:
        raise ConfigurationError(f"{expected} rows went to the model but {done.rows} results came back")
    return done


def in_order(predict_batch: PredictBatch) -> Executor:
    """One batch after another, in this thread."""

    def execute(work: Sequence[Batch]) -> Iterator[Ran]:
        for batch in work:
            results, counts = predict_batch(list(batch))
            yield Ran((results, counts), results, counts)

    return execute


def in_threads(predict_batch: PredictBatch, in_flight: int = 2) -> Executor:
    """``in_flight`` batches at a time on threads of this process. Two keep an API backend's calls from draining
    to zero at a batch boundary (its concurrency limit is shared by the whole process); local models serialise
    on their own lock."""

    def execute(work: Sequence[Batch]) -> Iterator[Ran]:
        with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="batch") as pool:
            for results, counts in pool.map(lambda batch: predict_batch(list(batch)), work):
                yield Ran((results, counts), results, counts)

    return execute


def joined(frame: pd.DataFrame, results: Sequence[RowResult], spec: ModelSpec) -> pd.DataFrame:
    """``frame``'s rows (all of them, left join on the row id) with the result columns: prediction, score, status,
    reason, raw, backend, model, latency_ms, calls, tokens."""
    predictions = results_frame(list(results), backend=spec.backend, model=spec.model)
    return frame.merge(predictions, on=ROW_ID, how="left", validate="one_to_one")
