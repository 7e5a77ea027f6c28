"""``ner``: named entities (text, type and character offsets) per text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from openautoglm.core.nlp.metrics import ner_metrics
from openautoglm.core.nlp.parse import parse_entities, parse_entities_json
from openautoglm.core.nlp.task_types.base import JSON_ONLY, TASK_TYPES, TaskKind

if TYPE_CHECKING:
    from openautoglm.core.nlp.types import Example, RowResult, TaskConfig, Value


class NamedEntities(TaskKind):
    name = "ner"
    description = "Named entities (PER, LOC, ORG, ...) with their offsets in the text."
    default_template = "请找出下面文本中的命名实体。\n文本: {text}"
    templates = (
        "请找出下面文本中的命名实体。\n文本: {text}",
        "抽取文本中的人名、地名、机构名: {text}",
        "Extract the named entities from: {text}",
    )
    words = "命名实体识别"
    labelled_demos = False
    offline_model = "local-lac"

    def format_rules(self, config: TaskConfig) -> str:
        types = "、".join(config.entity_types)
        return (
            f"{JSON_ONLY}格式: "
            '{"entities": [{"text": "<实体原文>", "type": "<类型>"}]}。'
            f"类型必须是以下之一: {types}（PER=人名, LOC=地名, ORG=机构名, TIME=时间）。"
            '实体原文必须与输入文本中的文字完全一致；没有实体时输出 {"entities": []}。'
        )

    def answer(self, config: TaskConfig, example: Example) -> str:
        return json.dumps({"entities": json.loads(example.label)}, ensure_ascii=False)

    def parse(self, raw: str, source: str, config: TaskConfig) -> tuple[Value, float | None]:
        return parse_entities(raw, source, config), None

    def metrics(
        self, config: TaskConfig, texts: Sequence[str], gold: Sequence[Any], results: Sequence[RowResult]
    ) -> dict[str, Any]:
        gold_entities = [parse_entities_json(g, t) for g, t in zip(gold, texts, strict=True)]
        predicted = [r.prediction if r.status == "ok" else None for r in results]
        return ner_metrics([len(t) for t in texts], gold_entities, predicted, config.entity_types)  # type: ignore[arg-type]

    def primary(self, metrics: dict[str, Any]) -> float:
        return float(metrics.get("f1", 0.0))

    def correct(self, config: TaskConfig, example: Example, result: RowResult) -> bool:
        if result.status != "ok":
            return False
        predicted = {(e.text, e.type) for e in result.prediction or ()}  # type: ignore[union-attr]
        gold = {(e["text"], e["type"]) for e in json.loads(example.label)}
        return predicted == gold


TASK_TYPES.add(NamedEntities.name, NamedEntities())
