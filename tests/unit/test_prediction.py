"""adapters.prediction: the one prediction loop, whatever runs the batches."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pytest

from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.models.base import BatchStats
from openautoglm.adapters.prediction import Batch, Ran, in_order, in_threads, plan_batches, predict
from openautoglm.core.data.schema import ROW_ID
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.types import Row, RowResult


def echo(batch: list[Row]) -> tuple[list[RowResult], BatchStats]:
    """A batch function answering each row with its own text, one call per row."""
    results = [RowResult(row_id=r.row_id, prediction=r.text, calls=1) for r in batch]
    return results, BatchStats(calls=len(batch))


FRAME = pd.DataFrame({ROW_ID: range(7), "text": [f"t{i}" for i in range(7)]})


@pytest.mark.parametrize("executor", [in_order, in_threads])
def test_every_row_in_order_with_the_counts_summed(executor) -> None:  # type: ignore[no-untyped-def]
    work = plan_batches(FRAME, "text", None, 3)
    assert [len(b) for b in work] == [3, 3, 1]
    seen: list[int] = []
    done = predict(work, executor(echo), progress=seen.append)
    assert [r.prediction for r in done.results] == FRAME["text"].tolist()
    assert done.stats.calls == 7 and done.rows == 7 and len(done.outputs) == 3
    assert seen == [3, 6, 7]
    joined = done.joined(FRAME, ModelSpec(model="local-use"))
    assert joined["prediction"].tolist() == FRAME["text"].tolist() and len(joined) == len(FRAME)


def test_a_cached_batch_counts_cache_hits_not_calls() -> None:
    def replay(work: Sequence[Batch]):  # type: ignore[no-untyped-def]
        for i, batch in enumerate(work):
            results, counts = echo(list(batch))
            yield Ran(None, results, counts, cached=i == 0)

    done = predict(plan_batches(FRAME, "text", None, 4), replay)
    assert (done.stats.calls, done.stats.cache_hits, done.cached_batches) == (3, 4, 1)


def test_a_lost_row_is_an_error() -> None:
    def drop_last(batch: list[Row]) -> tuple[list[RowResult], BatchStats]:
        results, counts = echo(batch)
        return results[:-1], counts

    with pytest.raises(ConfigurationError, match="7 rows went to the model but 5 results came back"):
        predict(plan_batches(FRAME, "text", None, 4), in_order(drop_last))
