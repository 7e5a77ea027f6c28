"""Data stages: load a source, clean, validate (with its gate), write the kept rows and the quarantine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from openautoglm.adapters.sinks import OutputFormat, write_frame, write_json
from openautoglm.adapters.sources import SourceSpec
from openautoglm.adapters.sources.base import existing_file
from openautoglm.adapters.validation import GateMode, ValidationConfig, ValidationTask, apply_gate, validate_dataset
from openautoglm.core.data.clean import CleanConfig, normalize_frame
from openautoglm.core.data.schema import Dataset
from openautoglm.stages import Port, PortType, StageContext, stage
from openautoglm.usecases.data import finish_clean, load_dataset

DATASET_OUT = Port("dataset", PortType.DATASET, "The rows, with the quarantine so far")
DATASET_IN = Port("dataset", PortType.DATASET, "The rows to work on")


class LoadParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: SourceSpec = Field(description="Where the data is: a CSV, JSONL or Parquet file, or an SQL table/query.")
    columns: list[str] | None = Field(default=None, max_length=200, description="Source columns to keep.")
    rename: dict[str, str] | None = Field(default=None, description="Renames applied after loading, old -> new.")


def _source_exists(params: LoadParams) -> None:
    path = getattr(params.source, "path", None)
    if path is not None:
        existing_file(path)


@stage(
    "load",
    "Read a CSV, JSONL or Parquet file or an SQL table/query; malformed records go to the quarantine.",
    params=LoadParams,
    outputs=(DATASET_OUT,),
    preflight=_source_exists,
    retries=3,
    retry_delay_seconds=[2, 5, 15],
    tags=["io"],
)
def load(inputs: Mapping[str, Any], params: LoadParams, context: StageContext) -> dict[str, Any]:
    return {"dataset": load_dataset(params.source, params.columns, params.rename)}


class CleanParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text_columns: list[str] = Field(default=["text"], min_length=1, max_length=20, description="Text columns.")
    rules: list[str] = Field(
        default=list(CleanConfig().rules),
        max_length=20,
        description="Cleaning rules in order (html, nfkc, fullwidth, control, whitespace).",
    )
    truncate_at: int | None = Field(default=None, ge=1, description="Cut texts to this length while cleaning.")
    drop_duplicates: bool = Field(default=True, description="Quarantine rows repeating an earlier row's text.")

    def clean_config(self) -> CleanConfig:
        return CleanConfig(
            text_columns=tuple(self.text_columns),
            rules=tuple(self.rules),
            max_length=self.truncate_at,
            drop_duplicates=self.drop_duplicates,
        )


@stage(
    "clean",
    "Normalise the text columns (rules in order); quarantine empty and duplicate rows.",
    params=CleanParams,
    inputs=(DATASET_IN,),
    outputs=(DATASET_OUT, Port("report", PortType.REPORT, "Cleaning counts per rule")),
)
def clean(inputs: Mapping[str, Any], params: CleanParams, context: StageContext) -> dict[str, Any]:
    dataset: Dataset = inputs["dataset"]
    config = params.clean_config()
    cleaned, merged = finish_clean(dataset, [normalize_frame(dataset.frame, config)], config)
    return {"dataset": cleaned, "report": merged.model_dump()}


class ValidateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: ValidationTask = Field(default="text_classification", description="Task kind; picks the validation suite.")
    text_columns: list[str] = Field(default=["text"], min_length=1, max_length=20, description="Text columns.")
    label_column: str | None = Field(default=None, description="Column with gold labels, if any.")
    labels: list[str] | None = Field(default=None, max_length=1000, description="Allowed labels.")
    id_column: str | None = Field(default=None, description="A source id column that must be unique.")
    min_length: int = Field(default=1, ge=0, description="Shortest valid text, in characters.")
    max_length: int = Field(default=8000, ge=1, description="Longest valid text, in characters.")
    gate: GateMode = Field(
        default="fail",
        description="fail: stop the run when a row breaks an expectation; quarantine: set such rows aside.",
    )

    def validation_config(self) -> ValidationConfig:
        return ValidationConfig(
            task=self.task,
            text_columns=tuple(self.text_columns),
            label_column=self.label_column,
            labels=tuple(self.labels) if self.labels is not None else None,
            id_column=self.id_column,
            min_length=self.min_length,
            max_length=self.max_length,
        )


@stage(
    "validate",
    "Check the rows with the task's Great Expectations suite; fail the run or quarantine the failing rows.",
    params=ValidateParams,
    inputs=(DATASET_IN,),
    outputs=(DATASET_OUT, Port("report", PortType.REPORT, "Great Expectations results")),
)
def validate(inputs: Mapping[str, Any], params: ValidateParams, context: StageContext) -> dict[str, Any]:
    dataset: Dataset = inputs["dataset"]
    outcome = validate_dataset(dataset, params.validation_config())
    path = write_json(context.folder / "validation.json", outcome.raw)
    gated = apply_gate(dataset, outcome, params.gate)
    gated.check_accounting()
    return {"dataset": gated, "report": {"success": outcome.success, "path": str(path)}}


class WriteParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: OutputFormat = Field(default="parquet", description="Format of the data file.")
    name: str = Field(default="data", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="File name without suffix.")


@stage(
    "write",
    "Write the kept rows and the quarantine (CSV, with each row's stage and reason) into the run's folder.",
    params=WriteParams,
    inputs=(Port("dataset", PortType.DATASET, "The rows to write"),),
    outputs=(Port("files", PortType.FILES, "The data and quarantine paths"),),
    retries=2,
    retry_delay_seconds=[2, 10],
    tags=["io"],
)
def write(inputs: Mapping[str, Any], params: WriteParams, context: StageContext) -> dict[str, Any]:
    dataset: Dataset = inputs["dataset"]
    dataset.check_accounting()
    data = write_frame(dataset.frame, context.folder, params.name, params.format)
    quarantine = write_frame(dataset.quarantine, context.folder, "quarantine", "csv")
    return {"files": {"data": str(data), "quarantine": str(quarantine), "rows": len(dataset)}}
