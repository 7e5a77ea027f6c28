"""``instruction_search`` (APE/OPRO style): a generative model writes new instructions.

Each round shows the proposer the best instructions so far with their dev scores (worst first, as OPRO does)
and a few dev examples the best one got wrong, and asks for a new instruction containing ``{text}``. Proposals
are made at temperature 0 with a candidate number in the request, so they are cached: a rerun proposes the
same instructions and pays nothing. Needs a generative model (GLM, or a local chat model).
"""

from __future__ import annotations

import re

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.prompts import Message
from openautoglm.core.nlp.types import TEMPLATE_SLOTS, TaskConfig
from openautoglm.core.prompt.budget import BudgetExhausted
from openautoglm.core.prompt.optimizers.base import OPTIMIZERS, Evaluation, SearchContext

SHOWN_INSTRUCTIONS = 5
SHOWN_MISTAKES = 4


def proposal_messages(start: TaskConfig, ranked: list[Evaluation], number: int) -> list[Message]:
    """The meta-prompt: the task, scored instructions (worst first), mistakes of the best, a candidate number."""
    lines = [f"任务: {start.kind.words}。"]
    if start.labels:
        lines.append(f"类别: {'、'.join(start.labels)}。")
    lines.append("以下是已经试过的指令和它们在验证集上的得分（越高越好）:")
    for evaluation in reversed(ranked[:SHOWN_INSTRUCTIONS]):
        lines.append(f"- 指令: {evaluation.config.template!r}  得分: {evaluation.score:.3f}")
    if ranked and ranked[0].mistakes:
        lines.append("最好的指令答错了这些例子:")
        for mistake in ranked[0].mistakes[:SHOWN_MISTAKES]:
            lines.append(f"- 文本: {mistake.text[:200]}  正确答案: {mistake.gold}  模型回答: {mistake.predicted}")
    slot = " 和 ".join(start.kind.placeholders)
    lines.append(
        f"请写一条新的、不同于以上的指令，让模型得分更高。指令中必须保留占位符 {slot}。"
        f"只输出指令本身，不要解释。（候选编号 {number}）"
    )
    return [
        {"role": "system", "content": "你是一名提示词工程师，负责改进给大语言模型的任务指令。"},
        {"role": "user", "content": "\n".join(lines)},
    ]


def parse_instruction(answer: str, start: TaskConfig) -> str | None:
    """The proposed instruction, with ``{text}`` (and ``{text_pair}``) ensured; ``None`` if empty or if it repeats
    a slot (a template may hold each once: :class:`~openautoglm.core.nlp.types.TaskConfig`)."""
    text = answer.strip().strip("`").strip()
    text = re.sub(r"^(新的?指令|指令|instruction)\s*[:：]\s*", "", text, flags=re.IGNORECASE).strip().strip("\"'“”")
    if not text or any(text.count(slot) > 1 for slot in TEMPLATE_SLOTS):
        return None
    if "{text}" not in text:
        text = f"{text}\n文本: {{text}}"
    if "{text_pair}" in start.kind.placeholders and "{text_pair}" not in text:
        text = f"{text}\n句子2: {{text_pair}}"
    return text[:2000]


def search(start: TaskConfig, context: SearchContext, *, rounds: int = 30) -> None:
    if context.propose is None:
        raise ConfigurationError(
            "instruction_search needs a generative model to write instructions.",
            hint="pass proposer='glm-4' (or a local chat model, local:/folder), or use template_search",
        )
    context.score([start], ["start"])
    number = 0
    for _ in range(rounds):
        if not context.can_continue():
            return
        ranked = sorted((e for e in context.history if e.score is not None), key=lambda e: -(e.score or 0.0))
        proposals: list[TaskConfig] = []
        for _ in range(context.round_size):
            number += 1
            try:
                answer = context.propose(proposal_messages(start, ranked, number))
            except BudgetExhausted:
                context.exhausted, context.stop_reason = True, "budget reached"
                break
            instruction = parse_instruction(answer, start)
            if instruction is not None:
                proposals.append(
                    TaskConfig.model_validate(
                        {**context.best_config(start).model_dump(), "prompt_template": instruction}
                    )
                )
        if proposals:
            context.score(proposals, ["instruction"] * len(proposals))
        if context.exhausted:
            return


OPTIMIZERS.add("instruction_search", search)
