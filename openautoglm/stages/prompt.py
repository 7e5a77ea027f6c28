"""Prompt stage: optimise a task's prompt against labelled rows; an ``infer`` node fed its prompt uses it.

The search is the ``optimize_prompt`` flow's (split, candidates scored in parallel within a hard call budget, the
best and the starting prompt scored on the test split, every candidate an MLflow run, the best registered in the
prompt registry), run as a subflow over the stage's input rows; :class:`PromptSearch` is the part of its
parameters that both share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openautoglm.core.data.schema import Dataset
from openautoglm.stages import Port, PortType, StageContext, stage
from openautoglm.usecases.prompt import PromptSearch

__all__ = ["PromptSearch", "optimize_prompt"]


@stage(
    "optimize-prompt",
    "Search a better prompt (template, verbalisers, instructions, few-shot examples) against the labelled rows, "
    "within a hard call budget; runs the optimize_prompt flow as a subflow (every candidate an MLflow run).",
    params=PromptSearch,
    inputs=(Port("dataset", PortType.DATASET, "Labelled rows (text and gold label columns)"),),
    outputs=(
        Port("prompt", PortType.PROMPT, "The best prompt with its dev and test scores (feed an infer node's prompt)"),
        Port("metrics", PortType.METRICS, "Dev and test scores of the best and the starting prompt, calls spent"),
    ),
)
def optimize_prompt(inputs: Mapping[str, Any], params: PromptSearch, context: StageContext) -> dict[str, Any]:
    from openautoglm.adapters.sources import ParquetSource
    from openautoglm.flows.optimize_prompt import OptimizePromptParams
    from openautoglm.flows.optimize_prompt import optimize_prompt as search_flow

    dataset: Dataset = inputs["dataset"]
    folder = context.folder / context.node
    folder.mkdir(parents=True, exist_ok=True)
    rows = folder / "labelled.parquet"  # the flow reads a source: the rows as this node received them
    dataset.frame[dataset.columns].to_parquet(rows, index=False)
    result = search_flow(OptimizePromptParams(source=ParquetSource(path=rows), output_dir=folder, **dict(params)))
    best = result.prompt
    metrics = {
        "dev_score": best.dev_score,
        "start_dev_score": best.start_dev_score,
        "test_score": best.test_score,
        "start_test_score": best.start_test_score,
        "calls": best.calls,
        "candidates": best.candidates,
        **(
            {"learned_dev_score": result.learned.dev_score, "learned_test_score": result.learned.test_score}
            if result.learned
            else {}
        ),
    }
    return {"prompt": best, "metrics": {k: v for k, v in metrics.items() if v is not None}}
