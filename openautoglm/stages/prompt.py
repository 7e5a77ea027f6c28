"""Prompt stage: optimise a task's prompt against labelled rows; an ``infer`` node fed its prompt uses it.

The search is the ``optimize_prompt`` flow's (split, candidates scored in parallel within a hard call budget, the
best and the starting prompt scored on the test split, every candidate an MLflow run, the best registered in the
prompt registry), run as a subflow over the stage's input rows; :class:`PromptSearch` is the part of its
parameters that both share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from openautoglm.adapters.cache import CacheMode
from openautoglm.adapters.models import ModelSpec
from openautoglm.core.data.schema import Dataset
from openautoglm.core.model_names import ModelString
from openautoglm.core.nlp.types import TaskConfig
from openautoglm.core.prompt.budget import Budget
from openautoglm.core.prompt.optimizers import OPTIMIZERS
from openautoglm.core.prompt.reference import check_alias, check_prompt_name
from openautoglm.stages import Port, PortType, StageContext, stage


class PromptSearch(BaseModel):
    """What to search and within what: the starting prompt, the model, the optimiser, the budget and the split."""

    model_config = ConfigDict(extra="forbid")

    task: TaskConfig = Field(description="The starting prompt: task type, labels, template, verbalisers, examples.")
    label_column: str = Field(default="label", description="Column with the gold answers.")
    text_column: str = Field(default="text", description="Column with the text (the first sentence for matching).")
    text_pair_column: str | None = Field(default=None, description="Column with the second sentence (matching).")
    model: ModelSpec = Field(default=ModelSpec(model="local-use"), description="The model the prompt is for.")
    proposer: ModelString | None = Field(
        default=None,
        description="Generative model that writes new instructions (instruction_search); default: the task model "
        "when it is generative.",
    )
    credentials_block: str | None = Field(
        default=None, description="ZhipuAICredentials block with the API key (default: ZHIPUAI_API_KEY)."
    )
    optimizer: str = Field(default="default", description="default, template_search, few_shot or instruction_search.")
    learner: Literal["few-label"] | None = Field(
        default=None,
        description="few-label: also fit few-label classifier heads (char TF-IDF and the model's offline encoders, "
        "as TaskPipeline.fit) on the train rows, save them as a model folder and keep whichever of them and the "
        "best prompt scores higher on dev (text_classification).",
    )
    learner_rows: int = Field(
        default=2000, ge=10, le=100_000, description="At most this many train rows train the learner (stratified)."
    )
    budget: Budget = Field(default=Budget(), description="Hard caps: model calls and (optionally) tokens.")
    dev_size: int = Field(default=200, ge=2, description="Labelled rows the candidates are scored on.")
    test_size: int | None = Field(
        default=None, ge=0, description="Rows held out for the final score (default: 20% of the data; 0: none)."
    )
    seed: int = Field(default=0, description="Seeds the split and every choice of the search.")
    round_size: int = Field(default=4, ge=1, le=64, description="Candidates scored together (in parallel).")
    cache: CacheMode = Field(default="use", description="use: reuse earlier answers; off: call the model again.")
    register_prompt: bool = Field(default=True, description="Register the best prompt in MLflow's prompt registry.")
    prompt_name: str | None = Field(
        default=None,
        max_length=128,
        description="Its registered name (letters, digits, _ . -); default: <experiment>.<task type>.",
    )
    alias: str | None = Field(
        default=None,
        description="Point this alias (e.g. production) at the new version; default: no alias moves.",
    )

    @model_validator(mode="after")
    def _check(self) -> PromptSearch:
        OPTIMIZERS.resolve(self.optimizer)
        if self.prompt_name is not None:
            check_prompt_name(self.prompt_name)
        if self.alias is not None:
            check_alias(self.alias)
        if self.learner and self.task.task_type != "text_classification":
            raise ValueError(f"learner {self.learner!r} learns text_classification, not {self.task.task_type}")
        self.task.kind.check_pair_column(self.text_pair_column)
        return self


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
