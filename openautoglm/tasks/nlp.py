"""Tasks of the NLP stages: one batch of rows through a model backend.

A batch is one task run (not a row): its result is persisted and cached by inputs + task source, so a rerun or
a resumed flow skips finished batches without a model call. A batch with failed rows raises
:class:`IncompleteBatchError` instead of returning, so it is retried and never cached; the flow takes the partial
results from the exception.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from openautoglm.adapters.cache import CacheMode
from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.models.run import default_cache, predict_rows
from openautoglm.blocks.credentials import resolve_zhipu_key
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig

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
    api_key = resolve_zhipu_key(credentials_block) if spec.backend == "zhipu" else None
    results, stats = predict_rows(spec, config, rows, api_key=api_key, cache=default_cache(cache_mode))
    if any(r.status == "error" for r in results):
        raise IncompleteBatchError(results, stats.as_dict())
    return results, stats.as_dict()


infer_batch_task = task(
    name="infer-batch",
    retries=2,
    retry_delay_seconds=[5, 30],
    cache_policy=TASK_SOURCE + INPUTS,
    persist_result=True,
    tags=["model"],
)(infer_batch)
