"""An infer node's preview: the first rows with their results, computed from those rows only."""

from __future__ import annotations

import pandas as pd

from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.models.base import BatchStats
from openautoglm.core.data.schema import ROW_ID, Dataset, frame_preview, quarantine_records
from openautoglm.core.nlp.types import RowResult, TaskConfig
from openautoglm.stages.nlp import Predictions


def test_preview_is_the_head_of_the_merged_frame() -> None:
    ids = [3, 5, 8, 9, 11, 12, 20]  # row ids with gaps, as after cleaning
    frame = pd.DataFrame({ROW_ID: ids, "text": pd.array([f"t{i}" for i in ids], dtype="string")})
    dataset = Dataset(frame=frame, source="x.csv", rows_read=7, quarantine=quarantine_records([]))
    results = [RowResult(row_id=i, prediction="正面" if i % 2 else "负面", score=0.5 + i / 100) for i in reversed(ids)]
    predictions = Predictions(
        dataset=dataset,
        results=results,
        stats=BatchStats(),
        task=TaskConfig(task_type="text_classification", labels=("正面", "负面")),
        model=ModelSpec(model="local-use"),
        text_column="text",
    )
    preview = predictions.preview(3)
    assert preview == frame_preview(predictions.frame(), 3)
    assert [row["text"] for row in preview] == ["t3", "t5", "t8"]
    assert [row["prediction"] for row in preview] == ["正面", "正面", "负面"]
