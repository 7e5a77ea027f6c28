"""The ``distill`` flow's parameters (a form in the Prefect UI, a deployment's body) and its result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from openautoglm.adapters.cache import CacheMode
from openautoglm.adapters.models import ModelSpec, default_batch_size
from openautoglm.adapters.sources import SourceSpec
from openautoglm.adapters.validation import GateMode, ValidationConfig
from openautoglm.core.data.clean import CleanConfig
from openautoglm.core.nlp.distill import STUDENTS, DistillOptions, default_student
from openautoglm.core.nlp.types import TaskConfig
from openautoglm.flows.runtime import RunTail


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
