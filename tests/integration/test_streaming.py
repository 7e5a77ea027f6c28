"""Streamed batch runs (issue 35): chunked and whole-file runs give the same files; duplicates across chunks are
quarantined as in one read; a killed run resumes by chunk and calls the model only for the rest; memory stays
bounded however many rows stream through."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import openautoglm.flows.run_task as run_task_module
import openautoglm.tasks.nlp as nlp_tasks
from openautoglm.adapters.models.base import BatchStats
from openautoglm.adapters.sources import CsvSource
from openautoglm.adapters.sources.load import iter_source
from openautoglm.adapters.validation import ValidationConfig, ValidationOutcome
from openautoglm.core.data.clean import CleanConfig, normalize_frame
from openautoglm.core.data.schema import Dataset, quarantine_records
from openautoglm.core.nlp.types import Row, RowResult
from openautoglm.flows.ingest import IngestParams, ingest
from openautoglm.flows.run_task import RunTaskParams, run_task
from openautoglm.flows.runtime import task_runner
from openautoglm.settings import Settings, get_settings
from openautoglm.usecases.stream import ChunkStore, Inferred, stream
from tests.conftest import EXAMPLES, require_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LABELS = ["正面", "负面", "中性"]
DIRTY = EXAMPLES / "user_feedback_dirty.csv"  # planted: blank, duplicate, bad label, extra field, long text, id twice
THREADS = task_runner(Settings(task_runner="threads"))


class CountingModel:
    """Stands in for ``predict_rows``: a fixed answer per text, the rows it was asked, and a failure after
    ``fail_after`` rows (a run killed mid-way)."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.rows = 0
        self.fail_after = fail_after

    def __call__(self, spec: Any, config: Any, rows: Sequence[Row], **_: Any) -> tuple[list[RowResult], BatchStats]:
        if self.fail_after is not None and self.rows + len(rows) > self.fail_after:
            raise RuntimeError("the model went away (the run is killed here)")
        self.rows += len(rows)
        results = [
            RowResult(row_id=r.row_id, prediction=LABELS[len(r.text) % 3], score=0.5, raw="", calls=1) for r in rows
        ]
        return results, BatchStats(calls=len(rows))


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> CountingModel:
    counting = CountingModel()
    monkeypatch.setattr(nlp_tasks, "predict_rows", counting)
    # No retries: a failed batch fails the run at once (the kill), instead of after the retry delays.
    monkeypatch.setattr(run_task_module, "infer_batch_task", nlp_tasks.infer_batch_task.with_options(retries=0))
    return counting


def sorted_quarantine(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig").sort_values("row_id").reset_index(drop=True)


def test_ingest_chunked_equals_whole_file_on_the_planted_rows(prefect_server: None, tmp_path: Path) -> None:
    def run(chunk_rows: int, out: str) -> Any:
        return ingest.with_options(task_runner=THREADS)(
            IngestParams(
                source=CsvSource(path=DIRTY, on_error="quarantine"),
                label_column="label",
                labels=LABELS,
                id_column="id",
                gate="quarantine",
                chunk_rows=chunk_rows,
                output_dir=tmp_path / out,
            )
        )

    whole, chunked = run(10_000, "whole"), run(7, "chunked")  # 66 rows: 10 chunks, the twice-used id apart
    assert pd.read_parquet(chunked.data_path).equals(pd.read_parquet(whole.data_path))
    pd.testing.assert_frame_equal(sorted_quarantine(chunked.quarantine_path), sorted_quarantine(whole.quarantine_path))
    assert (chunked.rows_read, chunked.rows_out, chunked.rows_quarantined) == (66, 59, 7)
    assert chunked.quarantined_by_stage == whole.quarantined_by_stage == {"load": 1, "clean": 2, "validate": 4}
    assert not chunked.passed_validation and not whole.passed_validation
    assert not any((get_settings().home / "chunks").glob("*/chunk-*.json"))  # a finished run leaves no chunks


def test_run_task_chunked_equals_whole_file(prefect_server: None, tmp_path: Path, model: CountingModel) -> None:
    def run(chunk_rows: int, out: str, **more: Any) -> Any:
        return run_task.with_options(task_runner=THREADS)(
            RunTaskParams.model_validate(
                {
                    "source": CsvSource(path=DIRTY, on_error="quarantine"),
                    "task": {"labels": LABELS},
                    "model": {"model": "local-use"},
                    "label_column": "label",
                    "batch_size": 4,
                    "cache": "off",
                    "chunk_rows": chunk_rows,
                    "output_dir": tmp_path / out,
                    **more,
                }
            )
        )

    whole = run(10_000, "whole")
    asked = model.rows
    chunked = run(5, "chunked", chunks_in_flight=3)
    assert model.rows - asked == asked == whole.rows_predicted  # each kept row asked once per run
    columns = lambda frame: frame.drop(columns=["latency_ms"])  # noqa: E731  (the one timing column)
    pd.testing.assert_frame_equal(
        columns(pd.read_csv(chunked.results_path, encoding="utf-8-sig")),
        columns(pd.read_csv(whole.results_path, encoding="utf-8-sig")),
    )
    pd.testing.assert_frame_equal(sorted_quarantine(chunked.quarantine_path), sorted_quarantine(whole.quarantine_path))
    assert chunked.metrics == whole.metrics and "accuracy" in whole.metrics
    assert chunked.status_counts == whole.status_counts
    assert (chunked.rows_read, chunked.rows_quarantined) == (whole.rows_read, whole.rows_quarantined)


def test_duplicates_in_other_chunks_are_quarantined_as_in_one_read(prefect_server: None, tmp_path: Path) -> None:
    texts = [f"评论{i % 7}" if i % 3 == 0 else f"独一{i}" for i in range(40)]  # repeats 7 and 21 rows apart
    path = tmp_path / "repeats.csv"
    pd.DataFrame({"text": texts, "label": "正面"}).to_csv(path, index=False)

    def run(chunk_rows: int, out: str) -> Any:
        return ingest.with_options(task_runner=THREADS)(
            IngestParams(
                source=CsvSource(path=path),
                label_column="label",
                labels=LABELS,
                chunk_rows=chunk_rows,
                output_dir=tmp_path / out,
                output_format="csv",
            )
        )

    whole, chunked = run(1_000, "whole"), run(4, "chunked")
    quarantine = sorted_quarantine(chunked.quarantine_path)
    pd.testing.assert_frame_equal(quarantine, sorted_quarantine(whole.quarantine_path))
    # Row 21 ("评论0") repeats row 0, three chunks back; its reason names that first row.
    assert quarantine.set_index("row_id").loc[21, "reason"] == "same text as row 0"
    assert len(quarantine) == sum(1 for i in range(40) if i % 3 == 0) - 7
    assert pd.read_csv(chunked.data_path, encoding="utf-8-sig").equals(
        pd.read_csv(whole.data_path, encoding="utf-8-sig")
    )


def test_a_killed_run_resumes_by_chunk(prefect_server: None, tmp_path: Path, model: CountingModel) -> None:
    rows = 60
    path = tmp_path / "rows.csv"
    pd.DataFrame({"text": [f"用户反馈{i}号" for i in range(rows)]}).to_csv(path, index=False)

    def params(out: str) -> RunTaskParams:
        return RunTaskParams.model_validate(
            {
                "source": CsvSource(path=path),
                "task": {"labels": LABELS},
                "model": {"model": "local-use"},
                "batch_size": 5,
                "cache": "off",  # neither the call cache nor the batch results answer: only the chunk store
                "chunk_rows": 10,
                "chunks_in_flight": 1,
                "output_dir": tmp_path / out,
            }
        )

    flow = run_task.with_options(task_runner=THREADS)
    model.fail_after = 33  # three chunks written, the fourth dies in its second batch
    with pytest.raises(Exception, match="went away"):
        flow(params("killed"))
    assert model.rows == 30
    stores = list((get_settings().home / "chunks").glob("*"))
    assert [len(list(s.glob("chunk-*.json"))) for s in stores] == [3]

    model.fail_after, model.rows = None, 0
    resumed = flow(params("resumed"))
    assert model.rows == rows - 30  # the model is asked only for the chunks not written
    assert resumed.calls == rows - 30 and resumed.rows_predicted == rows

    model.rows = 0
    fresh = flow(params("fresh"))  # one uninterrupted run (the store was cleared by the resumed one)
    assert model.rows == rows
    drop = ["latency_ms"]
    pd.testing.assert_frame_equal(
        pd.read_csv(resumed.results_path, encoding="utf-8-sig").drop(columns=drop),
        pd.read_csv(fresh.results_path, encoding="utf-8-sig").drop(columns=drop),
    )


def test_results_reach_postgresql_a_chunk_per_transaction(
    prefect_server: None, tmp_path: Path, model: CountingModel
) -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import sqlalchemy as sa

    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    table = f"stream_results_{tmp_path.name[-12:].lower().replace('-', '_')}"
    result = run_task.with_options(task_runner=THREADS)(
        RunTaskParams.model_validate(
            {
                "source": CsvSource(path=DIRTY, on_error="quarantine"),
                "task": {"labels": LABELS},
                "model": {"model": "local-use"},
                "cache": "off",
                "chunk_rows": 9,
                "output_sql_url": url,
                "output_table": table,
                "output_dir": tmp_path / "out",
            }
        )
    )
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            stored = pd.read_sql(sa.text(f"SELECT row_id, prediction FROM {table} ORDER BY row_id"), conn)
            conn.execute(sa.text(f"DROP TABLE {table}"))
            conn.commit()
    finally:
        engine.dispose()
    written = pd.read_csv(result.results_path, encoding="utf-8-sig")
    assert len(stored) == result.rows_predicted == len(written) and result.chunks == 8
    assert stored["row_id"].tolist() == written["row_id"].tolist()
    assert stored["prediction"].tolist() == written["prediction"].tolist()


class _Passing:
    """Chunk steps without Prefect or Great Expectations: what the memory test measures is the streaming."""

    def __init__(self, clean: CleanConfig) -> None:
        self.clean = clean

    def normalise(self, frame: pd.DataFrame) -> Any:
        return normalize_frame(frame, self.clean)

    def validate(self, dataset: Dataset) -> ValidationOutcome:
        return ValidationOutcome(success=True, expectations=[], failures=quarantine_records([]), raw={})

    def submit(self, dataset: Dataset) -> Any:
        return lambda: Inferred(output=dataset.frame)


def _peak_bytes(tmp_path: Path, rows: int) -> int:
    path = tmp_path / f"rows{rows}.csv"
    text = "这家店的外卖送得很快，味道也不错，下次还会再点。"
    pd.DataFrame({"text": [f"{i}:{text}" for i in range(rows)]}).to_csv(path, index=False)
    clean = CleanConfig()

    def chunks() -> Iterator[Dataset]:
        return iter_source(CsvSource(path=path), chunk_rows=500)

    store = ChunkStore(tmp_path / f"store{rows}")
    tracemalloc.start()
    try:
        totals = stream(
            chunks, _Passing(clean), store, clean=clean, validation=ValidationConfig(), gate="quarantine", in_flight=2
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert totals.rows_out == rows and totals.chunks == rows // 500
    return peak


def test_memory_stays_bounded_with_many_small_chunks(tmp_path: Path) -> None:
    small, large = _peak_bytes(tmp_path, 20_000), _peak_bytes(tmp_path, 40_000)
    # Twice the rows add the duplicate check's digests (24 bytes a row) and little else: under 100 bytes a row,
    # where holding the rows would add several hundred (each row's text alone is about 80 bytes as UTF-8).
    assert large - small < 100 * 20_000, (small, large)
    assert large < 32 * 2**20, large
