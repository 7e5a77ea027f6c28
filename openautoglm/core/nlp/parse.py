"""Strict parsing of generative model output.

A label outside the label set, output that is not the asked-for JSON, or an entity whose text is not in the
input is a :class:`ParseError` with a reason; nothing is guessed or silently accepted.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pandas as pd

from openautoglm.core.nlp.types import Entity, TaskConfig

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class ParseError(ValueError):
    """The output does not follow the format; the message says how (it is sent back in the repair prompt)."""


def _json_object(raw: str) -> dict[str, Any]:
    text = raw.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"不是合法的JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ParseError("JSON必须是一个对象 {...}")
    return value


def parse_label(raw: str, config: TaskConfig) -> str:
    """``{"label": "<one of the labels>"}`` -> the label."""
    value = _json_object(raw)
    label = value.get("label")
    if not isinstance(label, str):
        raise ParseError('缺少字符串字段 "label"')
    label = label.strip()
    if label not in (config.labels or ()):
        raise ParseError(f"类别 '{label}' 不在允许的类别中: {'、'.join(config.labels or ())}")
    return label


def parse_score(raw: str) -> float:
    """``{"score": <0..1>}`` -> the score."""
    value = _json_object(raw)
    score = value.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise ParseError('缺少数值字段 "score"')
    if not 0.0 <= float(score) <= 1.0:
        raise ParseError(f"score {score} 不在0到1之间")
    return float(score)


def parse_entities(raw: str, source: str, config: TaskConfig) -> tuple[Entity, ...]:
    """``{"entities": [{"text", "type"}]}`` -> entities with offsets into ``source``.

    Repeated mentions take successive occurrences. An entity text not found in ``source`` (after the
    previous occurrence) or of an unknown type is an error.
    """
    value = _json_object(raw)
    items = value.get("entities")
    if not isinstance(items, list):
        raise ParseError('缺少列表字段 "entities"')
    found: list[Entity] = []
    next_start: dict[str, int] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not isinstance(item.get("type"), str):
            raise ParseError('每个实体必须是 {"text": "...", "type": "..."}')
        text, kind = item["text"], item["type"].strip().upper()
        if kind not in config.entity_types:
            raise ParseError(f"实体类型 '{kind}' 不在 {'、'.join(config.entity_types)} 中")
        if not text:
            raise ParseError("实体原文为空")
        start = source.find(text, next_start.get(text, 0))
        if start < 0:
            start = source.find(text)  # the model listed one mention twice
            if start < 0:
                raise ParseError(f"实体 '{text}' 不在输入文本中")
        next_start[text] = start + len(text)
        entity = Entity(text=text, type=kind, start=start, end=start + len(text))
        if entity not in found:
            found.append(entity)
    return tuple(sorted(found, key=lambda e: (e.start, e.end)))


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
