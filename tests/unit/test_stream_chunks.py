"""Chunked readers give, chunk after chunk, what one read gives (row ids, line numbers, quarantine), and the digest
set finds repeats across chunks with the first row's id."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from openautoglm.adapters.sources import CsvSource, JsonlSource, ParquetSource, SqlSource
from openautoglm.adapters.sources.load import iter_source, load_source
from openautoglm.core.data.clean import CleanConfig, clean_frame, normalize_frame
from openautoglm.core.data.digests import DigestSet, drop_seen_duplicates
from openautoglm.core.data.schema import Dataset
from tests.conftest import EXAMPLES


def joined(chunks: list[Dataset]) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series | None, int]:
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    quarantine = pd.concat([c.quarantine for c in chunks], ignore_index=True)
    lines = None if chunks[0].lines is None else pd.concat([c.lines for c in chunks if c.lines is not None])
    return frame, quarantine, lines, sum(c.rows_read for c in chunks)


def assert_same(spec: object, rows: int) -> list[Dataset]:
    whole = load_source(spec)  # type: ignore[arg-type]
    chunks = list(iter_source(spec, chunk_rows=rows))  # type: ignore[arg-type]
    frame, quarantine, lines, read = joined(chunks)
    pd.testing.assert_frame_equal(frame, whole.frame)
    pd.testing.assert_frame_equal(quarantine, whole.quarantine, check_dtype=False)
    assert read == whole.rows_read
    if whole.lines is not None:
        assert lines is not None and lines.tolist() == whole.lines.tolist()
    return chunks


@pytest.mark.parametrize("rows", [1, 4, 7, 65, 66, 1000])
def test_csv_chunks_join_to_the_whole_read_bad_rows_included(rows: int) -> None:
    chunks = assert_same(CsvSource(path=EXAMPLES / "user_feedback_dirty.csv", on_error="quarantine"), rows)
    assert len(chunks) == (1 if rows >= 66 else -(-66 // rows))
    assert all(c.rows_read <= rows for c in chunks)


def test_csv_with_newlines_in_values_keeps_its_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('text,label\n"a\nb",x\nc,y\n"d\n\ne",z\nf,w\n', encoding="utf-8")
    chunks = assert_same(CsvSource(path=path), 2)
    assert [c.rows_read for c in chunks] == [2, 2]


def test_jsonl_chunks_take_every_key_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    lines = [json.dumps({"text": f"t{i}", **({"extra": i} if i == 5 else {})}) for i in range(9)]
    path.write_text("\n".join([*lines[:3], "not json", *lines[3:]]) + "\n", encoding="utf-8")
    chunks = assert_same(JsonlSource(path=path, on_error="quarantine"), 3)
    assert all("extra" in c.frame.columns for c in chunks)


def test_parquet_and_sqlite_chunks(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": range(23), "text": [f"t{i}" for i in range(23)]})
    frame.to_parquet(tmp_path / "rows.parquet")
    assert [c.rows_read for c in assert_same(ParquetSource(path=tmp_path / "rows.parquet"), 5)] == [5] * 4 + [3]
    with sqlite3.connect(tmp_path / "db.sqlite") as conn:
        frame.to_sql("rows", conn, index=False)
    spec = SqlSource(url=f"sqlite:///{tmp_path / 'db.sqlite'}", query="rows")
    assert [c.rows_read for c in assert_same(spec, 10)] == [10, 10, 3]


def test_digest_set_names_the_first_row_across_chunks() -> None:
    texts = ["a", "b", "a", None, "c", "b", None, "a", "d", "c"]
    frame = pd.DataFrame({"row_id": np.arange(10), "text": pd.array(texts, dtype="string")})
    config = CleanConfig(drop_empty=False)
    _, whole_rejected, _ = clean_frame(frame, config)
    seen, rejected = DigestSet(), []
    for start in range(0, 10, 3):
        chunk, _ = normalize_frame(frame.iloc[start : start + 3].reset_index(drop=True), config)
        rejected.append(drop_seen_duplicates(chunk, ["text"], seen)[1])
    streamed = pd.concat(rejected, ignore_index=True).sort_values("row_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(streamed, whole_rejected.sort_values("row_id").reset_index(drop=True))
    assert len(seen) == 5 and seen.nbytes == 5 * 24  # 16-byte digests and 8-byte row ids
