"""Per-row results as a table, and evaluation against gold columns."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from openautoglm.core.data.schema import ROW_ID
from openautoglm.core.nlp.metrics import classification_metrics, matching_metrics, ner_metrics
from openautoglm.core.nlp.types import Entity, RowResult, TaskConfig

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


def parse_entities_json(value: Any, text: str) -> tuple[Entity, ...]:
    """Gold entities from JSON ``[{"text", "type", "start"?, "end"?}]`` (offsets found when absent)."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return ()
    items = json.loads(value) if isinstance(value, str) else value
    entities = []
    cursor: dict[str, int] = {}
    for item in items:
        start = item.get("start")
        if start is None:
            start = text.find(item["text"], cursor.get(item["text"], 0))
            if start < 0:
                raise ValueError(f"gold entity {item['text']!r} is not in {text!r}")
        end = item.get("end", start + len(item["text"]))
        cursor[item["text"]] = end
        entities.append(Entity(text=text[start:end], type=str(item["type"]).upper(), start=start, end=end))
    return tuple(entities)


def evaluate(
    config: TaskConfig, inputs: pd.DataFrame, results: Sequence[RowResult], *, text_column: str, gold_column: str
) -> dict[str, Any]:
    """Metrics of ``results`` against ``inputs[gold_column]`` (rows matched by ``row_id``).

    Gold by task: a label (classification); a JSON entity list (NER); a label from ``labels`` or a numeric
    similarity (matching; Spearman/Pearson for numbers, accuracy for labels).
    """
    by_id = {r.row_id: r for r in results}
    rows = inputs[inputs[ROW_ID].isin(list(by_id))]
    ordered = [by_id[int(i)] for i in rows[ROW_ID]]
    gold = rows[gold_column].tolist()
    if config.task_type == "text_classification":
        predicted = [r.prediction if r.status == "ok" else None for r in ordered]
        return classification_metrics([str(g) for g in gold], predicted, list(config.labels or ()))  # type: ignore[arg-type]
    if config.task_type == "ner":
        texts = rows[text_column].tolist()
        gold_entities = [parse_entities_json(g, t) for g, t in zip(gold, texts, strict=True)]
        predicted_entities = [r.prediction if r.status == "ok" else None for r in ordered]
        return ner_metrics(
            [len(t) for t in texts],
            gold_entities,
            predicted_entities,  # type: ignore[arg-type]
            config.entity_types,
        )
    scores = [r.score if r.status == "ok" else None for r in ordered]
    labels = set(config.match_labels)
    if all(str(g) in labels for g in gold):
        return matching_metrics(
            None,
            scores,
            gold_labels=[str(g) for g in gold],
            predicted_labels=[str(r.prediction) if r.status == "ok" else None for r in ordered],
        )
    return matching_metrics([float(g) for g in gold], scores)
