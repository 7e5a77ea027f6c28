"""Tasks of the NLP stages: one batch of rows through a model backend.

A batch is one task run (not a row): its result is persisted and cached by inputs + task source, so a rerun or
a resumed flow skips finished batches without a model call. A batch with failed rows raises
:class:`IncompleteBatchError` instead of returning, so it is retried and never cached; the flow takes the partial
results from the exception.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
from prefect import task, unmapped
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE

from openautoglm.adapters.cache import CacheMode
from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.models.base import BatchStats
from openautoglm.adapters.models.run import default_cache, predict_rows
from openautoglm.adapters.prediction import Ran, joined, plan_batches, predict
from openautoglm.adapters.sinks import write_sql
from openautoglm.blocks.credentials import api_key_for
from openautoglm.core.data.schema import ROW_ID, Dataset
from openautoglm.core.nlp.results import evaluate
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig
from openautoglm.tasks.data import DataSteps
from openautoglm.usecases.stream import ChunkStore, Inferred

BatchOutput = tuple[list[RowResult], dict[str, Any]]


class IncompleteBatchError(Exception):
    """Some rows of a batch failed; carries every row's result and the batch counts."""

    def __init__(self, results: list[RowResult], stats: dict[str, Any]) -> None:
        failed = sum(r.status == "error" for r in results)
        super().__init__(f"{failed} of {len(results)} rows failed: {stats.get('errors')}")
        self.results = results
        self.stats = stats

    def __reduce__(self) -> tuple[Any, ...]:  # results survive pickling to and from Dask workers
        return (IncompleteBatchError, (self.results, self.stats))


def infer_batch(
    rows: tuple[Row, ...],
    config: TaskConfig,
    spec: ModelSpec,
    credentials_block: str | None,
    cache_mode: CacheMode,
    version: str,
) -> BatchOutput:
    """Run one batch. ``version`` (the package's) is an input so a new release does not reuse old results."""
    api_key = api_key_for(spec, credentials_block)
    results, stats = predict_rows(spec, config, rows, api_key=api_key, cache=default_cache(cache_mode))
    if any(r.status == "error" for r in results):
        raise IncompleteBatchError(results, stats.as_dict())
    return results, stats.as_dict()


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_chunks_task(
    config: TaskConfig, store: ChunkStore, chunks: int, text_column: str, gold_column: str
) -> dict[str, Any]:
    """The task's metrics against ``gold_column`` over a streamed run's chunks (their rows and answers are read
    back a chunk at a time; the metrics need the texts, gold values and answers of every row)."""
    frames = list(store.frames("out", chunks, columns=[ROW_ID, text_column, gold_column]))
    inputs = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[ROW_ID, text_column, gold_column])
    )
    results = [r for part in store.results(chunks) for r in part]
    return evaluate(config, inputs, results, text_column=text_column, gold_column=gold_column)


@task(name="write-sql", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE, tags=["io"])
def write_sql_chunks_task(store: ChunkStore, chunks: int, url: str, table: str, password_env: str | None) -> int:
    """A streamed run's result rows into ``table`` of the database at ``url``, one chunk (one transaction) at a
    time: the first replaces the table, the others append to it."""
    password = os.environ.get(password_env) if password_env else None
    written = 0
    for index, frame in enumerate(store.frames("out", chunks)):
        written += write_sql(frame, url, table, password=password, if_exists="replace" if index == 0 else "append")
    return written


def gathered(futures: Iterable[Any]) -> Iterator[Ran]:
    """Each ``infer-batch`` future's :class:`Ran`, in order. A finished batch is handed on as its future, so
    Prefect records it as a data dependency of the tasks that read it; a batch whose rows failed after its
    retries gives its partial results with their reasons."""
    for future in futures:
        try:
            results, counts = future.result()
        except IncompleteBatchError as incomplete:
            partial = (incomplete.results, incomplete.stats)
            yield Ran(partial, incomplete.results, BatchStats.from_dict(incomplete.stats))
            continue
        yield Ran(future, results, BatchStats.from_dict(counts), cached=future.state.name == "Cached")


@dataclass(frozen=True)
class InferSteps(DataSteps):
    """The chunk steps of an inference run (the ``run_task`` flow): cleaning and validation as for ingest, then
    the chunk's batches mapped over ``infer`` (an ``infer-batch`` task) on the task runner as soon as the chunk is
    ready; its output is its rows joined with their results (see :func:`~openautoglm.usecases.stream.stream`)."""

    infer: Any = None
    shared: tuple[Any, ...] = ()
    text_column: str = "text"
    text_pair_column: str | None = None
    batch_size: int = 16
    spec: ModelSpec | None = None

    def __post_init__(self) -> None:
        if self.infer is None or self.spec is None:
            raise TypeError("InferSteps needs infer (an infer-batch task) and spec (the model)")

    def submit(self, dataset: Dataset) -> Callable[[], Inferred]:
        work = plan_batches(dataset.frame, self.text_column, self.text_pair_column, self.batch_size)
        futures = self.infer.map(work, *map(unmapped, self.shared), wait_for=list(self.after)) if work else []

        def collect() -> Inferred:
            done = predict(work, lambda _: gathered(futures))
            return Inferred(
                output=joined(dataset.frame, done.results, self.spec),  # type: ignore[arg-type]
                results=done.results,
                stats=done.stats,
                batches=len(work),
                batches_cached=done.cached_batches,
            )

        return collect


infer_batch_task = task(
    name="infer-batch",
    retries=2,
    retry_delay_seconds=[5, 30],
    cache_policy=TASK_SOURCE + INPUTS,
    persist_result=True,
    # Persisted, not also kept: Prefect's result store holds the last 1,000 results in memory by default, which in
    # a streamed run is every batch's answers (measured: the flow process grew 0.56 KB a row, 711 MB at 100k rows).
    cache_result_in_memory=False,
    tags=["model"],
)(infer_batch)
