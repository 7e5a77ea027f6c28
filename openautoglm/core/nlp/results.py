"""Per-row results as a table, and evaluation against gold columns."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from openautoglm.core.data.schema import ROW_ID
from openautoglm.core.nlp.types import RowResult, TaskConfig

RESULT_COLUMNS = (
    ROW_ID,
    "prediction",
    "score",
    "status",
    "reason",
    "raw",
    "backend",
    "model",
    "latency_ms",
    "calls",
    "tokens",
)


def _value(result: RowResult) -> str | None:
    if result.prediction is None:
        return None
    if isinstance(result.prediction, tuple):
        return json.dumps([e.as_dict() for e in result.prediction], ensure_ascii=False)
    return str(result.prediction)


def results_frame(results: Sequence[RowResult], *, backend: str, model: str) -> pd.DataFrame:
    """One row per result; NER predictions are JSON lists of ``{text, type, start, end}``."""
    frame = pd.DataFrame(
        {
            ROW_ID: pd.array([r.row_id for r in results], dtype="int64"),
            "prediction": pd.array([_value(r) for r in results], dtype="string"),
            "score": pd.array([r.score for r in results], dtype="Float64"),
            "status": pd.array([r.status for r in results], dtype="string"),
            "reason": pd.array([r.reason for r in results], dtype="string"),
            "raw": pd.array([r.raw for r in results], dtype="string"),
            "backend": backend,
            "model": model,
            "latency_ms": [round(r.latency_ms, 2) for r in results],
            "calls": [r.calls for r in results],
            "tokens": [r.tokens for r in results],
        },
        columns=list(RESULT_COLUMNS),
    )
    return frame


def evaluate(
    config: TaskConfig, inputs: pd.DataFrame, results: Sequence[RowResult], *, text_column: str, gold_column: str
) -> dict[str, Any]:
    """Metrics of ``results`` against ``inputs[gold_column]`` (rows matched by ``row_id``), as the task type
    defines them (:meth:`~openautoglm.core.nlp.task_types.TaskKind.metrics`).

    Gold by task: a label (classification); a JSON entity list (NER); a label from ``labels`` or a numeric
    similarity (matching; Spearman/Pearson for numbers, accuracy for labels).
    """
    by_id = {r.row_id: r for r in results}
    rows = inputs[inputs[ROW_ID].isin(list(by_id))]
    ordered = [by_id[int(i)] for i in rows[ROW_ID]]
    return config.kind.metrics(config, rows[text_column].tolist(), rows[gold_column].tolist(), ordered)
