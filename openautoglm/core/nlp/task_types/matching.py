"""``semantic_matching``: whether two texts mean the same, as a similarity on [0, 1] and a (no, yes) label."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from openautoglm.core.nlp.metrics import matching_metrics
from openautoglm.core.nlp.parse import parse_score
from openautoglm.core.nlp.task_types.base import JSON_ONLY, TASK_TYPES, TaskKind

if TYPE_CHECKING:
    from openautoglm.core.nlp.types import Example, RowResult, TaskConfig, Value


class SemanticMatching(TaskKind):
    name = "semantic_matching"
    description = "Whether a text pair means the same: a similarity and a match label at a threshold."
    default_template = "请判断下面两个句子的意思是否相同，并给出0到1之间的相似度。\n句子1: {text}\n句子2: {text_pair}"
    templates = (
        default_template,
        "句子A: {text}\n句子B: {text_pair}\n两句话说的是同一件事吗？",
    )
    words = "语义匹配（判断两个句子是否同义）"
    needs_pair = True

    def format_rules(self, config: TaskConfig) -> str:
        return f'{JSON_ONLY}格式: {{"score": <0到1之间的数>}}，1表示意思完全相同，0表示完全无关。'

    def answer(self, config: TaskConfig, example: Example) -> str:
        return json.dumps({"score": 1.0 if example.label == config.match_labels[1] else 0.0})

    def parse(self, raw: str, source: str, config: TaskConfig) -> tuple[Value, float | None]:
        score = parse_score(raw)
        no, yes = config.match_labels
        return (yes if score >= config.threshold else no), score

    def metrics(
        self, config: TaskConfig, texts: Sequence[str], gold: Sequence[Any], results: Sequence[RowResult]
    ) -> dict[str, Any]:
        """Accuracy when every gold value is one of the match labels; Spearman/Pearson for numeric gold."""
        scores = [r.score if r.status == "ok" else None for r in results]
        labels = set(config.match_labels)
        if all(str(g) in labels for g in gold):
            return matching_metrics(
                None,
                scores,
                gold_labels=[str(g) for g in gold],
                predicted_labels=[str(r.prediction) if r.status == "ok" else None for r in results],
            )
        return matching_metrics([float(g) for g in gold], scores)

    def primary(self, metrics: dict[str, Any]) -> float:
        if "spearman" in metrics:
            return float(metrics["spearman"])
        return float(metrics.get("accuracy", 0.0))

    def correct(self, config: TaskConfig, example: Example, result: RowResult) -> bool:
        if result.status != "ok":
            return False
        if example.label not in config.match_labels:
            return (float(result.score or 0.0) >= config.threshold) == (float(example.label) >= 0.5)
        return str(result.prediction) == example.label


TASK_TYPES.add(SemanticMatching.name, SemanticMatching(), "matching")
