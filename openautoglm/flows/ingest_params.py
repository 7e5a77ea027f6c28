"""The ``ingest`` flow's parameters (a form in the Prefect UI, a deployment's body) and its result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field

from openautoglm.adapters.sinks import OutputFormat
from openautoglm.adapters.sources import SourceSpec
from openautoglm.flows.runtime import RunTail
from openautoglm.stages.data import CleanParams, ValidateParams
from openautoglm.usecases.stream import StreamParams, digest_of

#: Settings that change no chunk's rows: the run's folder and name, the joined file's format, the parallelism.
_NOT_IN_CHUNKS = {"output_dir", "experiment", "output_format", "chunks_in_flight"}


class IngestParams(StreamParams, ValidateParams, CleanParams):
    """Parameters of the ``ingest`` flow (a form in the Prefect UI): the ``validate`` stage's settings (task, text
    columns, labels, id column, lengths, gate), the ``clean`` stage's (rules, truncation, duplicates), how the rows
    stream (chunk size, chunks in flight), and where the rows come from and are written."""

    model_config = ConfigDict(extra="forbid")

    source: SourceSpec = Field(description="Where the data is: a CSV, JSONL or Parquet file, or an SQL table/query.")
    columns: list[str] | None = Field(default=None, description="Source columns to keep (default: all).")
    rename: dict[str, str] | None = Field(default=None, description="Renames applied after loading, old -> new.")
    output_dir: Path | None = Field(default=None, description="Output folder (default: a new one under home).")
    output_format: OutputFormat = Field(default="parquet", description="Format of the cleaned data file.")
    experiment: str = Field(default="ingest", min_length=1, description="MLflow experiment name.")

    def stream_digest(self) -> str:
        """What shapes each chunk's output (not where the files go, nor how many chunks run at once): half of the
        key a finished chunk is found again by when a killed run is started again."""
        return digest_of(self.model_dump(mode="json", exclude=_NOT_IN_CHUNKS))

    def tracking_params(self) -> dict[str, Any]:
        """Flat, secret-free parameters for MLflow."""
        return {
            "source_kind": self.source.kind,
            "source": self.source.describe(),
            "columns": self.columns,
            "rename": self.rename,
            "task": self.task,
            "text_columns": self.text_columns,
            "label_column": self.label_column,
            "labels": self.labels,
            "id_column": self.id_column,
            "gate": self.gate,
            "min_length": self.min_length,
            "max_length": self.max_length,
            "truncate_at": self.truncate_at,
            "drop_duplicates": self.drop_duplicates,
            "clean_rules": self.rules,
            "output_format": self.output_format,
            "chunk_rows": self.chunk_rows,
            "chunks_in_flight": self.chunks_in_flight,
        }


class IngestResult(RunTail):
    """What an ingest run produced and where."""

    passed_validation: bool
    rows_read: int
    rows_out: int
    rows_quarantined: int
    quarantined_by_stage: dict[str, int]
    data_path: Path | None
    quarantine_path: Path
    validation_path: Path
    summary_path: Path

    def headline(self) -> dict[str, float | int | None]:
        """The figures pushed to the Prometheus Pushgateway."""
        return {k: getattr(self, k) for k in ("rows_read", "rows_out", "rows_quarantined", "seconds")}
