"""Chat messages for generative models: the user's instruction plus a strict JSON answer format.

The answer format is stated in the system message so that a user's template (the seed's
``"判断以下用户反馈的情感倾向:{text}"``) needs no formatting rules of its own.
"""

from __future__ import annotations

from openautoglm.core.nlp.types import Row, TaskConfig

Message = dict[str, str]


def _user(config: TaskConfig, text: str, text_pair: str | None) -> str:
    return config.template.replace("{text}", text).replace("{text_pair}", text_pair or "")


def build_messages(config: TaskConfig, row: Row) -> list[Message]:
    """System rules, few-shot demonstrations as earlier turns, then the row."""
    kind = config.kind
    messages: list[Message] = [{"role": "system", "content": kind.format_rules(config)}]
    for example in config.few_shot:
        messages.append({"role": "user", "content": _user(config, example.text, example.text_pair)})
        messages.append({"role": "assistant", "content": kind.answer(config, example)})
    messages.append({"role": "user", "content": _user(config, row.text, row.text_pair)})
    return messages


def repair_messages(messages: list[Message], bad_answer: str, problem: str, config: TaskConfig) -> list[Message]:
    """The conversation so far, the unusable answer, and a request to answer again in the right format."""
    return [
        *messages,
        {"role": "assistant", "content": bad_answer},
        {"role": "user", "content": f"上面的回答无法使用: {problem}。请重新回答。{config.kind.format_rules(config)}"},
    ]
