"""NLP stages: run a task (classification, NER, matching) over a dataset with a model; score; write results."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from openautoglm.adapters.cache import CacheMode
from openautoglm.adapters.models import ModelSpec, default_batch_size
from openautoglm.adapters.models.base import BatchStats
from openautoglm.adapters.models.run import check_supported, default_cache, predict_rows
from openautoglm.adapters.prediction import in_order, joined, plan_batches, predict
from openautoglm.adapters.sinks import OutputFormat, write_frame
from openautoglm.blocks.credentials import api_key_for
from openautoglm.core.data.schema import ROW_ID, Dataset, frame_preview
from openautoglm.core.nlp.results import evaluate as score
from openautoglm.core.nlp.types import RowResult, TaskConfig
from openautoglm.stages import Port, PortType, StageContext, stage


@dataclass(frozen=True)
class Predictions:
    """A dataset, one model result per row, and the counts of the calls that made them."""

    dataset: Dataset
    results: list[RowResult]
    stats: BatchStats
    task: TaskConfig
    model: ModelSpec
    text_column: str

    def frame(self) -> pd.DataFrame:
        """The dataset's rows with the result columns (prediction, score, status, ...)."""
        return joined(self.dataset.frame, self.results, self.model)

    def preview(self, rows: int = 5) -> list[dict[str, Any]]:
        """The first ``rows`` rows with their results (text, prediction, score, status)."""
        head = self.dataset.frame.head(rows)
        wanted = set(head[ROW_ID].tolist())
        return frame_preview(joined(head, [r for r in self.results if r.row_id in wanted], self.model), rows)

    def summary(self) -> dict[str, Any]:
        status: dict[str, int] = {}
        for result in self.results:
            status[result.status] = status.get(result.status, 0) + 1
        return {"rows": len(self.results), "status": status, "model": self.model.model, **self.stats.as_dict()}


class InferParams(BaseModel):
    """Predict every row: the task, the model and how to call it (the ``run_task`` flow's parameters extend these)."""

    model_config = ConfigDict(extra="forbid")

    task: TaskConfig = Field(description="The task: type, labels, prompt template, few-shot examples.")
    model: ModelSpec = Field(
        default=ModelSpec(model="local-auto"),
        description="The model and how to call it. For API models max_concurrency is the account's limit: it is "
        "shared out between the Dask worker processes.",
    )
    credentials_block: str | None = Field(
        default=None, description="ZhipuAICredentials block with the API key (default: ZHIPUAI_API_KEY)."
    )
    text_column: str = Field(default="text", description="Column with the text (the first sentence for matching).")
    text_pair_column: str | None = Field(default=None, description="Column with the second sentence (matching).")
    batch_size: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Rows per batch; default 64 for API and chat models (their calls overlap inside a batch), "
        "1024 for local encoders and taggers (fewer, larger tasks).",
    )
    cache: CacheMode = Field(default="use", description="use: reuse earlier answers; off: call the model again.")

    @model_validator(mode="after")
    def _check(self) -> InferParams:
        self.task.kind.check_pair_column(self.text_pair_column)
        check_supported(self.model, self.task)
        return self

    def effective_batch_size(self) -> int:
        return self.batch_size if self.batch_size is not None else default_batch_size(self.model)


@stage(
    "infer",
    "Run the task on every row with a GLM model (Zhipu API) or an offline model; failed rows keep their reason.",
    params=InferParams,
    inputs=(
        Port("dataset", PortType.DATASET, "The rows to predict"),
        Port(
            "prompt",
            PortType.PROMPT,
            "An optimised prompt (an optimize-prompt node): its template, verbalisers and examples replace the task's",
            required=False,
        ),
    ),
    outputs=(Port("predictions", PortType.PREDICTIONS, "One result per row"),),
    tags=["model"],
)
def infer(inputs: Mapping[str, Any], params: InferParams, context: StageContext) -> dict[str, Any]:
    dataset: Dataset = inputs["dataset"]
    prompt = inputs.get("prompt")
    task = prompt.task_config(params.task.task_type) if prompt is not None else params.task
    api_key = api_key_for(params.model, params.credentials_block)
    cache = default_cache(params.cache)
    work = plan_batches(dataset.frame, params.text_column, params.text_pair_column, params.effective_batch_size())
    run_batch = in_order(lambda batch: predict_rows(params.model, task, batch, api_key=api_key, cache=cache))
    predicted = predict(work, run_batch)
    predictions = Predictions(dataset, predicted.results, predicted.stats, task, params.model, params.text_column)
    return {"predictions": predictions}


class EvaluateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label_column: str = Field(default="label", description="Column with the gold labels (entities, scores).")


@stage(
    "evaluate",
    "Score the predictions against a gold column: accuracy and F1 (classification), entity F1 (NER), Spearman.",
    params=EvaluateParams,
    inputs=(Port("predictions", PortType.PREDICTIONS, "The predictions to score"),),
    outputs=(Port("metrics", PortType.METRICS, "The task's metrics"),),
)
def evaluate(inputs: Mapping[str, Any], params: EvaluateParams, context: StageContext) -> dict[str, Any]:
    predictions: Predictions = inputs["predictions"]
    frame = predictions.dataset.frame
    if params.label_column not in frame.columns:
        from openautoglm.core.errors import ConfigurationError

        raise ConfigurationError(
            f"Node '{context.node}': no gold column '{params.label_column}' in the data.",
            hint=f"columns are {[c for c in frame.columns if c != ROW_ID]}",
        )
    metrics = score(
        predictions.task,
        frame,
        predictions.results,
        text_column=predictions.text_column,
        gold_column=params.label_column,
    )
    return {"metrics": metrics}


class WriteResultsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: OutputFormat = Field(default="csv", description="Format of the results file.")
    name: str = Field(default="results", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="File name without suffix.")


@stage(
    "write-results",
    "Write each row with its prediction, and the quarantine with reasons, into the run's folder.",
    params=WriteResultsParams,
    inputs=(Port("predictions", PortType.PREDICTIONS, "The predictions to write"),),
    outputs=(Port("files", PortType.FILES, "The results and quarantine paths, and counts by status"),),
    retries=2,
    retry_delay_seconds=[2, 10],
    tags=["io"],
)
def write_results(inputs: Mapping[str, Any], params: WriteResultsParams, context: StageContext) -> dict[str, Any]:
    predictions: Predictions = inputs["predictions"]
    output = predictions.frame()
    results = write_frame(output, context.folder, params.name, params.format)
    quarantine = write_frame(predictions.dataset.quarantine, context.folder, "quarantine", "csv")
    status = {str(k): int(v) for k, v in output["status"].value_counts().items()}
    stats = json.loads(json.dumps(predictions.stats.as_dict(), default=str))
    return {"files": {"results": str(results), "quarantine": str(quarantine), "status": status, "stats": stats}}
