"""Rows in = rows out + rows quarantined, for any mix of good and bad rows, through load, clean and validate."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openautoglm import DataLoader
from openautoglm.adapters.validation import ValidationConfig, apply_gate, validate_dataset
from openautoglm.core.data.clean import CleanConfig, clean_frame

LABELS = ("正面", "负面", "中性")
good_text = st.sampled_from(["好吃", "太慢了", "<b>一般</b>", "ＡＰＰ好用", "送餐快 ", "味道不错"])
bad_text = st.sampled_from(["", "   ", "<br>", "很" * 30])
row = st.one_of(
    st.tuples(st.just("ok"), good_text, st.sampled_from(LABELS)),
    st.tuples(st.just("bad_text"), bad_text, st.sampled_from(LABELS)),
    st.tuples(st.just("bad_label"), good_text, st.sampled_from(["差评", "", "1"])),
    st.tuples(st.just("extra_field"), good_text, st.sampled_from(LABELS)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(row, min_size=1, max_size=40))
def test_no_row_is_lost(tmp_path: Path, rows: list[tuple[str, str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "label"])
    for kind, text, label in rows:
        writer.writerow([text, label, "extra"] if kind == "extra_field" else [text, label])
    path = tmp_path / "rows.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")

    loaded = DataLoader.from_csv(path, on_error="quarantine").load()
    assert loaded.rows_read == len(rows)
    kept, rejected, _ = clean_frame(loaded.frame, CleanConfig(max_length=None))
    cleaned = loaded.with_frame(loaded.frame).reject(rejected)
    assert len(cleaned) == len(kept)
    config = ValidationConfig(label_column="label", labels=LABELS, max_length=20)
    final = apply_gate(cleaned, validate_dataset(cleaned, config), "quarantine")

    assert final.rows_read == len(final) + len(final.quarantine) == len(rows)
    assert final.quarantine["row_id"].is_unique
    assert set(final.quarantine["row_id"]) | set(final.frame["row_id"]) == set(range(len(rows)))
    expected_bad = {i for i, (kind, _, _) in enumerate(rows) if kind != "ok"}
    assert expected_bad <= set(final.quarantine["row_id"])  # every planted bad row is caught
