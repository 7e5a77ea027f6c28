"""Flow ``distill``: ingest -> clean -> validate -> teach (budgeted) -> train student -> register.

A teacher (a GLM model through the API, or an offline pipeline such as ``local-auto``) labels the rows in a seeded
order within a call budget, through the call cache; a small student learns its labels and is measured on
held-out rows (agreement with the teacher; accuracy of both against a gold column when one is named), then logged
to MLflow and registered in the Model Registry. Load it with ``model="mlflow:/<name>/<version>"`` anywhere a model
is named (SDK, ``run_task``, the REST API), or from the run folder's ``student`` with ``model="local:<folder>"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field, model_validator

from openautoglm import __version__
from openautoglm.adapters.cache import CacheMode
from openautoglm.adapters.distill import teacher_counts
from openautoglm.adapters.models import ModelSpec, default_batch_size
from openautoglm.adapters.models.run import check_supported, model_identity
from openautoglm.adapters.sources import SourceSpec
from openautoglm.adapters.tracking import log_metrics
from openautoglm.adapters.validation import GateMode, ValidationConfig
from openautoglm.core.data.clean import CleanConfig
from openautoglm.core.data.schema import ROW_ID
from openautoglm.core.nlp.batching import frame_rows
from openautoglm.core.nlp.distill import STUDENTS, DistillOptions, default_student, gold_answers
from openautoglm.core.nlp.types import TaskConfig
from openautoglm.flows.runtime import RunTail, task_runner, tracked_flow
from openautoglm.flows.stages import prepare_input
from openautoglm.tasks.distill import register_student_task, teach_task, train_student_task


class DistillParams(BaseModel):
    """Parameters of the ``distill`` flow (a form in the Prefect UI)."""

    model_config = ConfigDict(extra="forbid")

    source: SourceSpec = Field(description="The unlabelled rows: a CSV, JSONL or Parquet file, or an SQL query.")
    columns: list[str] | None = Field(default=None, description="Source columns to keep (default: all).")
    rename: dict[str, str] | None = Field(default=None, description="Renames applied after loading, old -> new.")
    task: TaskConfig = Field(description="The teacher's task: labels, prompt template (text_classification).")
    teacher: ModelSpec = Field(
        default=ModelSpec(model="local-auto"), description="The teacher: glm-4-flash, glm-4 (API), local-auto..."
    )
    credentials_block: str | None = Field(
        default=None, description="ZhipuAICredentials block with the API key (default: ZHIPUAI_API_KEY)."
    )
    distill: DistillOptions = Field(description="The student, the teacher-call budget, the split, the model name.")
    text_column: str = Field(default="text", description="Column with the text.")
    label_column: str | None = Field(
        default=None, description="Gold labels, if any: the held-out rows are then scored (never used to train)."
    )
    batch_size: int | None = Field(
        default=None, ge=1, le=100_000, description="Rows per teacher batch (default 64 for API models, 1024 local)."
    )
    cache: CacheMode = Field(default="use", description="use: reuse earlier teacher answers; off: ask again.")
    gate: GateMode = Field(default="quarantine", description="What to do with rows that fail validation.")
    max_length: int = Field(default=8000, ge=1, description="Longest valid text, in characters.")
    output_dir: Path | None = Field(default=None, description="Output folder (default: a new one under home).")
    experiment: str = Field(default="distill", min_length=1, description="MLflow experiment name.")

    @model_validator(mode="before")
    @classmethod
    def _student_for_task(cls, data: Any) -> Any:
        """No student named: the task's own (``crf-ner`` for NER, else ``tfidf-linear``)."""
        if isinstance(data, dict) and isinstance(data.get("distill"), dict) and "student" not in data["distill"]:
            task = data.get("task")
            task_type = task.get("task_type") if isinstance(task, dict) else getattr(task, "task_type", None)
            student = default_student(task_type or "text_classification")
            data = {**data, "distill": {**data["distill"], "student": student}}
        return data

    @model_validator(mode="after")
    def _check(self) -> DistillParams:
        kind = STUDENTS.resolve(self.distill.student)
        if self.task.task_type not in kind.tasks:
            raise ValueError(f"a {self.distill.student} student cannot learn {self.task.task_type}")
        return self

    def effective_batch_size(self) -> int:
        """Rows per teacher batch (see ``batch_size``)."""
        return self.batch_size if self.batch_size is not None else default_batch_size(self.teacher)

    def clean_config(self) -> CleanConfig:
        return CleanConfig(text_columns=(self.text_column,))

    def validation_config(self) -> ValidationConfig:
        return ValidationConfig(
            task=self.task.task_type,
            text_columns=(self.text_column,),
            label_column=self.label_column,
            labels=self.task.labels,
            max_length=self.max_length,
        )

    def tracking_params(self) -> dict[str, Any]:
        """Flat, secret-free parameters for MLflow."""
        return {
            "source": self.source.describe(),
            "source_kind": self.source.kind,
            "task_type": self.task.task_type,
            "labels": self.task.labels,
            "prompt_template": self.task.template,
            "teacher": self.teacher.model,
            "teacher_backend": self.teacher.backend,
            "base_url": self.teacher.base_url,
            "max_concurrency": self.teacher.max_concurrency,
            **self.distill.model_dump(),
            "batch_size": self.effective_batch_size(),
            "cache": self.cache,
            "gate": self.gate,
            "text_column": self.text_column,
            "label_column": self.label_column,
            "credentials_block": self.credentials_block,
        }


class DistillFlowResult(RunTail):
    """What a distill run produced and where."""

    name: str
    version: int
    model: str
    labels: list[str]
    metrics: dict[str, float | int]
    rows_read: int
    rows_quarantined: int
    student_folder: Path | None
    summary_path: Path


@flow(name="distill", task_runner=task_runner())
def distill(params: DistillParams) -> DistillFlowResult:
    """Distil a teacher (GLM or an offline pipeline) into a small student registered in the MLflow Model Registry."""
    logger = get_run_logger()
    check_supported(params.teacher, params.task)
    options = params.distill
    with tracked_flow(
        "distill",
        params.experiment,
        output_dir=params.output_dir,
        params=params.tracking_params(),
        tags={"openautoglm.model": params.teacher.model},
        what=f"distill ({params.teacher.model} -> {options.student} '{options.name}')",
    ) as tracked:
        folder = tracked.folder
        prepared = prepare_input(params, folder)
        frame = prepared.dataset.frame
        rows = frame_rows(frame, params.text_column, None)
        taught = teach_task(
            tuple(rows),
            params.task,
            params.teacher,
            params.credentials_block,
            params.cache,
            options.budget,
            options.seed,
            params.effective_batch_size(),
            f"{__version__}|{model_identity(params.teacher)}",
        )
        gold = None
        if params.label_column:
            gold = gold_answers(frame[ROW_ID], frame[params.label_column], params.task.task_type)
        texts = {r.row_id: r.text for r in rows}
        fit = train_student_task(texts, taught.results, gold, options, params.task, params.cache)
        metrics = {**teacher_counts(taught), **fit.metrics, "unlabelled_rows": len(rows)}
        log_metrics(metrics)
        registered, saved = register_student_task(
            fit, options, teacher=params.teacher.model, metrics=metrics, folder=folder
        )
        _summary_artifact(params, registered.model, fit.labels, metrics)
        summary_path = folder / "summary.json"
        result = DistillFlowResult(
            name=registered.name,
            version=registered.version,
            model=registered.model,
            labels=fit.labels,
            metrics=metrics,
            rows_read=prepared.dataset.rows_read,
            rows_quarantined=len(prepared.dataset.quarantine),
            student_folder=saved,
            summary_path=summary_path,
            **tracked.tail(),
        )
        tracked.summarise(result)
    logger.info(
        "%s -> %s: %d teacher calls, %s", params.teacher.model, registered.model, metrics["teacher_calls"], metrics
    )
    return result


def _summary_artifact(params: DistillParams, model: str, labels: list[str], metrics: dict[str, float | int]) -> None:
    lines = "\n".join(f"| {k} | {v} |" for k, v in metrics.items())
    create_markdown_artifact(
        key="distill-summary",
        markdown=(
            f"# {params.teacher.model} -> {params.distill.student}: `{model}`\n\nlabels {labels}; load it with "
            f'`TaskPipeline("text_classification", model="{model}")`\n\n| metric | value |\n|---|---|\n{lines}\n'
        ),
        description="The registered student and its metrics (no input rows)",
    )
