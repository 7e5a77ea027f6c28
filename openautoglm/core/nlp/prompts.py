"""Chat messages for generative models: the user's instruction plus a strict JSON answer format.

The answer format is stated in the system message so that a user's template (the seed's
``"判断以下用户反馈的情感倾向:{text}"``) needs no formatting rules of its own.
"""

from __future__ import annotations

import json

from openautoglm.core.nlp.types import Example, Row, TaskConfig

Message = dict[str, str]


def _format_rules(config: TaskConfig) -> str:
    if config.task_type == "text_classification":
        labels = "、".join(config.labels or ())
        return f'只输出一个JSON对象，不要输出其他内容。格式: {{"label": "<类别>"}}，类别必须是以下之一: {labels}。'
    if config.task_type == "ner":
        types = "、".join(config.entity_types)
        return (
            "只输出一个JSON对象，不要输出其他内容。格式: "
            '{"entities": [{"text": "<实体原文>", "type": "<类型>"}]}。'
            f"类型必须是以下之一: {types}（PER=人名, LOC=地名, ORG=机构名, TIME=时间）。"
            '实体原文必须与输入文本中的文字完全一致；没有实体时输出 {"entities": []}。'
        )
    return '只输出一个JSON对象，不要输出其他内容。格式: {"score": <0到1之间的数>}，1表示意思完全相同，0表示完全无关。'


def _user(config: TaskConfig, text: str, text_pair: str | None) -> str:
    return config.template.replace("{text}", text).replace("{text_pair}", text_pair or "")


def _answer(config: TaskConfig, example: Example) -> str:
    if config.task_type == "semantic_matching":
        return json.dumps({"score": 1.0 if example.label == config.match_labels[1] else 0.0})
    if config.task_type == "ner":
        return json.dumps({"entities": json.loads(example.label)}, ensure_ascii=False)
    return json.dumps({"label": example.label}, ensure_ascii=False)


def build_messages(config: TaskConfig, row: Row) -> list[Message]:
    """System rules, few-shot demonstrations as earlier turns, then the row."""
    messages: list[Message] = [{"role": "system", "content": _format_rules(config)}]
    for example in config.few_shot:
        messages.append({"role": "user", "content": _user(config, example.text, example.text_pair)})
        messages.append({"role": "assistant", "content": _answer(config, example)})
    messages.append({"role": "user", "content": _user(config, row.text, row.text_pair)})
    return messages


def repair_messages(messages: list[Message], bad_answer: str, problem: str, config: TaskConfig) -> list[Message]:
    """The conversation so far, the unusable answer, and a request to answer again in the right format."""
    return [
        *messages,
        {"role": "assistant", "content": bad_answer},
        {"role": "user", "content": f"上面的回答无法使用: {problem}。请重新回答。{_format_rules(config)}"},
    ]
