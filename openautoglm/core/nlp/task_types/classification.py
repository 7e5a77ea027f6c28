"""``text_classification``: one label from a closed label set per text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from openautoglm.core.nlp.metrics import classification_metrics
from openautoglm.core.nlp.parse import parse_label
from openautoglm.core.nlp.task_types.base import JSON_ONLY, TASK_TYPES, TaskKind

if TYPE_CHECKING:
    from openautoglm.core.nlp.types import Example, RowResult, TaskConfig, Value


class TextClassification(TaskKind):
    name = "text_classification"
    description = "One label per text from a closed label set (sentiment, topic)."
    default_template = "请判断下面文本的类别。\n文本: {text}"
    templates = (
        "{text}",
        "评论: {text}",
        "用户评价：{text}",
        "这是一条用户评论：{text}",
        "{text}。总的来说，",
        "文本: {text}\n类别:",
        "判断以下文本的类别: {text}",
        "Review: {text}",
        "{text} In short,",
    )
    words = "文本分类"
    closed_labels = True

    def format_rules(self, config: TaskConfig) -> str:
        labels = "、".join(config.labels or ())
        return f'{JSON_ONLY}格式: {{"label": "<类别>"}}，类别必须是以下之一: {labels}。'

    def answer(self, config: TaskConfig, example: Example) -> str:
        return json.dumps({"label": example.label}, ensure_ascii=False)

    def parse(self, raw: str, source: str, config: TaskConfig) -> tuple[Value, float | None]:
        return parse_label(raw, config), None

    def metrics(
        self, config: TaskConfig, texts: Sequence[str], gold: Sequence[Any], results: Sequence[RowResult]
    ) -> dict[str, Any]:
        predicted = [str(r.prediction) if r.status == "ok" else None for r in results]
        return classification_metrics([str(g) for g in gold], predicted, list(config.labels or ()))

    def primary(self, metrics: dict[str, Any]) -> float:
        return float(metrics.get("accuracy", 0.0))

    def correct(self, config: TaskConfig, example: Example, result: RowResult) -> bool:
        return result.status == "ok" and str(result.prediction) == example.label


TASK_TYPES.add(TextClassification.name, TextClassification(), "classification")
