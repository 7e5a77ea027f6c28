"""``default``: the combination that suits the task model.

- embedding models: ``template_search`` (templates and verbalisers) with 35% of the budget, then ``few_shot``
  (label prototypes) from the best of it with the rest;
- generative models: ``instruction_search`` with half the budget when a proposer is available (else
  ``template_search``), then ``few_shot`` (demonstrations) with the rest.
"""

from __future__ import annotations

from openautoglm.core.nlp.types import TaskConfig
from openautoglm.core.prompt.optimizers import few_shot, instruction_search, template_search
from openautoglm.core.prompt.optimizers.base import OPTIMIZERS, SearchContext

FIRST_STAGE_SHARE = {"embedding": 0.35, "generative": 0.5, "tagger": 0.5}


def search(start: TaskConfig, context: SearchContext) -> None:
    total = context.calls_left()
    first = instruction_search.search if context.kind == "generative" and context.propose else template_search.search
    context.with_reserve(int(total * (1.0 - FIRST_STAGE_SHARE[context.kind])))
    first(start, context)
    context.with_reserve(0)
    context.stop_reason = ""
    few_shot.search(context.best_config(start), context)


OPTIMIZERS.add("default", search)
