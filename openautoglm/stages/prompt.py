"""Prompt stage: optimise a task's prompt against labelled rows; an ``infer`` node fed its prompt uses it.

The search is the use case :func:`openautoglm.usecases.prompt.optimise_prompt`, as in the ``optimize_prompt`` flow
and ``PromptOptimizer`` (split, candidates scored within a hard call budget, the best and the starting prompt
scored on the test split, every candidate a nested MLflow run, the best registered in the prompt registry), over
the stage's input rows in this task run; :class:`PromptSearch` is its parameter model (the flow's extends it).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from openautoglm.core.data.schema import Dataset
from openautoglm.stages import Port, PortType, StageContext, stage
from openautoglm.usecases.prompt import PromptSearch, in_process, optimise_prompt

__all__ = ["PromptSearch", "optimize_prompt"]


@stage(
    "optimize-prompt",
    "Search a better prompt (template, verbalisers, instructions, few-shot examples) against the labelled rows, "
    "within a hard call budget (every candidate an MLflow run).",
    params=PromptSearch,
    inputs=(Port("dataset", PortType.DATASET, "Labelled rows (text and gold label columns)"),),
    outputs=(
        Port("prompt", PortType.PROMPT, "The best prompt with its dev and test scores (feed an infer node's prompt)"),
        Port("metrics", PortType.METRICS, "Dev and test scores of the best and the starting prompt, calls spent"),
    ),
)
def optimize_prompt(inputs: Mapping[str, Any], params: PromptSearch, context: StageContext) -> dict[str, Any]:
    from openautoglm.adapters.few_label import LEARNED_FOLDER, learn, log_learned
    from openautoglm.adapters.prompt_search import round_logger
    from openautoglm.adapters.tracking import tracked_run
    from openautoglm.blocks.credentials import api_key_for

    dataset: Dataset = inputs["dataset"]
    folder = context.folder / context.node
    folder.mkdir(parents=True, exist_ok=True)
    train, dev, test = params.splits(dataset.frame)
    key_for = partial(api_key_for, block_name=params.credentials_block)
    with tracked_run("optimize_prompt", run_name=f"{params.optimizer}-{params.model.model}") as run:
        done = optimise_prompt(
            params,
            train,
            dev,
            test,
            scorer=in_process(params.model, key_for(params.model), params.cache),
            key_for=key_for,
            on_round=round_logger(run),
            run_id=run.run_id,
            folder=folder,
        )
        learned = None
        if params.learner:
            args = (params.model, params.task, train, dev, test, folder / LEARNED_FOLDER)
            learned = learn(*args, max_rows=params.learner_rows, seed=params.seed, cache_mode=params.cache)
            log_learned(learned)
    best = done.prompt
    metrics = {
        "dev_score": best.dev_score,
        "start_dev_score": best.start_dev_score,
        "test_score": best.test_score,
        "start_test_score": best.start_test_score,
        "calls": best.calls,
        "candidates": best.candidates,
        **({"learned_dev_score": learned.dev_score, "learned_test_score": learned.test_score} if learned else {}),
    }
    return {"prompt": best, "metrics": {k: v for k, v in metrics.items() if v is not None}}
