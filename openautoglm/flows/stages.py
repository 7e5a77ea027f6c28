"""The data stages every flow starts with: load -> clean (chunks on the task runner) -> validate -> gate.

Called inside a flow and inside an open MLflow run: it logs the data-stage metrics and artifacts there, the kept
rows as the run's input dataset (source, digest, row counts; no copy of the data), and leaves a validation markdown
artifact on the flow run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import mlflow
import pandas as pd
from prefect import get_run_logger, unmapped
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from openautoglm.adapters.sinks import OutputFormat, write_json
from openautoglm.adapters.sources import SourceSpec
from openautoglm.adapters.sources.load import iter_source
from openautoglm.adapters.tracking import log_dataset, log_metrics
from openautoglm.adapters.validation import GateMode, ValidationConfig, ValidationOutcome
from openautoglm.core.data.clean import CleanConfig, CleanReport
from openautoglm.core.data.schema import ROW_ID, Dataset, split_rows
from openautoglm.flows.runtime import runs_in_processes
from openautoglm.settings import get_settings
from openautoglm.tasks.data import (
    finish_clean_task,
    gate_task,
    load_task,
    normalize_chunk_task,
    validate_task,
)
from openautoglm.usecases.data import source_password
from openautoglm.usecases.stream import ChunkSteps, ChunkStore, Streamed, source_digest, stream


@dataclass(frozen=True)
class Prepared:
    """A dataset after the data stages, and what happened to it."""

    dataset: Dataset
    clean_report: CleanReport
    outcome: ValidationOutcome
    validation_path: Path

    @property
    def passed(self) -> bool:
        return self.outcome.success


class DataInput(Protocol):
    """Flow parameters that name a source and how to clean, validate and gate it."""

    @property
    def source(self) -> SourceSpec: ...

    @property
    def columns(self) -> list[str] | None: ...

    @property
    def rename(self) -> dict[str, str] | None: ...

    @property
    def gate(self) -> GateMode: ...

    def clean_config(self) -> CleanConfig: ...

    def validation_config(self) -> ValidationConfig: ...


def prepare_input(params: DataInput, folder: Path, chunk_rows: int = 20_000) -> Prepared:
    """:func:`prepare` with what ``params`` say."""
    return prepare(
        params.source,
        columns=params.columns,
        rename=params.rename,
        clean=params.clean_config(),
        validation=params.validation_config(),
        gate=params.gate,
        chunk_rows=chunk_rows,
        folder=folder,
    )


def prepare(
    source: SourceSpec,
    *,
    columns: list[str] | None,
    rename: dict[str, str] | None,
    clean: CleanConfig,
    validation: ValidationConfig,
    gate: GateMode,
    chunk_rows: int,
    folder: Path,
) -> Prepared:
    """Run the data stages; in ``fail`` mode raise after the reports are written and logged."""
    logger = get_run_logger()
    dataset = load_task(source, columns, rename)
    logger.info("read %d rows (%d malformed) from %s", dataset.rows_read, len(dataset.quarantine), dataset.source)
    # The cleaning rules are Python string work: chunks on threads take turns on the GIL (3 chunks of the 52k-row
    # bench file cost 0.15 s more than one), so they are split only for a runner with worker processes.
    chunks = split_rows(dataset.frame, chunk_rows if runs_in_processes() else max(len(dataset.frame), 1))
    # The futures themselves go to the next task: Prefect then records each chunk as its data dependency (a result
    # fetched from a Dask worker in the flow body carries no link to the task run that made it).
    normalised = normalize_chunk_task.map(chunks, unmapped(clean))
    dataset, report = finish_clean_task(dataset, list(normalised), clean)
    outcome: ValidationOutcome = validate_task(dataset, validation)
    validation_path = write_json(folder / "validation.json", outcome.raw)
    create_markdown_artifact(
        key="validation",
        markdown=outcome.summary_markdown(f"Validation of {source.describe()}") + clean_markdown(report),
        description="Great Expectations results and cleaning counts",
    )
    mlflow.log_artifact(str(validation_path))
    mlflow.log_dict(report.model_dump(), "clean_report.json")
    try:
        dataset = gate_task(dataset, outcome, gate)  # a task: the kept rows are a data edge to what follows
    finally:
        summary = dataset.summary()
        log_metrics(
            {
                "rows_read": summary["rows_read"],
                "rows_out": summary["rows_out"],
                "rows_quarantined": summary["rows_quarantined"],
                **{f"quarantined_{k}": v for k, v in summary["quarantined_by_stage"].items()},
                **{f"clean_changed_{k}": v for k, v in report.changed.items()},
                "clean_truncated": report.truncated,
                "validation_passed": int(outcome.success),
            }
        )
        log_input(source, dataset, summary)
    dataset.check_accounting()
    return Prepared(dataset=dataset, clean_report=report, outcome=outcome, validation_path=validation_path)


def log_input(source: SourceSpec, dataset: Dataset, summary: dict[str, Any]) -> None:
    """The kept rows as the MLflow run's input dataset (context: the flow's name), named after the source, with the
    row counts as tags. Informational: a failure to log is a warning, never the run's failure."""
    described = source.describe()  # secret-free: a path, or dialect://host/db table without user or password
    path = getattr(source, "path", None)
    try:
        log_dataset(
            dataset.frame,
            name=Path(path).name if path is not None else described.rsplit(" ", 1)[-1],
            source=described,
            source_type="local" if path is not None else source.kind,
            context=str(flow_run.flow_name or "input"),
            tags={
                "rows_read": summary["rows_read"],
                "rows_kept": summary["rows_out"],
                "rows_quarantined": summary["rows_quarantined"],
            },
            skip_columns=(ROW_ID,),
        )
    except Exception as error:  # the data stages' results stand without the dataset entry
        get_run_logger().warning("could not log the input dataset to MLflow: %s", error)


def counts_table(rows_read: int, by_stage: dict[str, int], report: CleanReport, kept: int) -> list[dict[str, Any]]:
    """Rows at each step (read, quarantined by each stage, kept), for a Prefect table artifact."""
    return [
        {"step": "read", "rows": rows_read},
        {"step": "quarantined while loading (malformed)", "rows": by_stage.get("load", 0)},
        {"step": "quarantined while cleaning (empty)", "rows": report.dropped_empty},
        {"step": "quarantined while cleaning (duplicate)", "rows": report.dropped_duplicate},
        {"step": "quarantined by validation", "rows": by_stage.get("validate", 0)},
        {"step": "kept", "rows": kept},
    ]


def clean_markdown(report: CleanReport) -> str:
    """The cleaning counts as a markdown section."""
    rules = "\n".join(f"| {rule} | {count} |" for rule, count in sorted(report.changed.items())) or "| (none) | 0 |"
    return (
        f"\n## Cleaning\n\n{report.rows_in} rows in, {report.rows_out} kept; {report.dropped_empty} empty, "
        f"{report.dropped_duplicate} duplicate, {report.truncated} truncated.\n\n| rule | texts changed |\n|---|---|\n"
        f"{rules}\n"
    )


class StreamInput(DataInput, Protocol):
    """Flow parameters of a streamed run: a data input, its chunking, and the digest of what shapes its output."""

    @property
    def chunk_rows(self) -> int: ...

    @property
    def chunks_in_flight(self) -> int: ...

    def stream_digest(self) -> str: ...


@dataclass(frozen=True)
class StreamedInput:
    """A streamed run's totals and the store that holds its finished chunks (joined into files by :meth:`join`)."""

    totals: Streamed
    store: ChunkStore

    def join(self, kind: str, folder: Path, stem: str, fmt: OutputFormat) -> Path:
        return self.store.join(kind, self.totals.chunks, folder, stem, fmt)

    def counts_table(self) -> list[dict[str, Any]]:
        t = self.totals
        return counts_table(t.rows_read, t.quarantined_by_stage, t.clean, t.rows_out)

    def sample(self, rows: int = 10) -> pd.DataFrame:
        """The first rows written (the first non-empty chunk's)."""
        for frame in self.store.frames("out", self.totals.chunks):
            if len(frame):
                return frame.head(rows)
        return pd.DataFrame()


def stream_input(params: StreamInput, folder: Path, steps: ChunkSteps, *, keep_results: bool = False) -> StreamedInput:
    """Stream the source through ``steps`` a chunk at a time (:func:`~openautoglm.usecases.stream.stream`), in a
    store keyed by the source's and the parameters' digests under ``$HOME/chunks`` (a rerun of a killed run goes
    on where it stopped); then log and report what the data stages did, as :func:`prepare` does. In ``fail`` mode
    raise after the reports are written and logged."""
    logger = get_run_logger()
    source = params.source
    store = ChunkStore.under(get_settings().home.expanduser() / "chunks", source_digest(source), params.stream_digest())
    finished = len(list(store.folder.glob("chunk-*.json"))) if store.folder.is_dir() else 0
    if finished:
        logger.info("resuming: %d finished chunk(s) of an earlier run in %s", finished, store.folder)
    password = source_password(source)
    totals = Streamed(source=source.describe())
    try:
        stream(
            lambda: iter_source(source, params.columns, params.rename, chunk_rows=params.chunk_rows, password=password),
            steps,
            store,
            clean=params.clean_config(),
            validation=params.validation_config(),
            gate=params.gate,
            in_flight=params.chunks_in_flight,
            keep_results=keep_results,
            totals=totals,
        )
    finally:
        report_stream(source, totals, folder)
    logger.info(
        "read %d rows in %d chunk(s) (%d finished earlier); kept %d, quarantined %d",
        totals.rows_read,
        totals.chunks,
        totals.chunks_resumed,
        totals.rows_out,
        totals.rows_quarantined,
    )
    return StreamedInput(totals=totals, store=store)


def report_stream(source: SourceSpec, totals: Streamed, folder: Path) -> None:
    """The data stages' files, artifacts and MLflow metrics of a streamed run (see :func:`prepare`)."""
    outcome = totals.outcome()
    validation_path = write_json(folder / "validation.json", outcome.raw)
    create_markdown_artifact(
        key="validation",
        markdown=outcome.summary_markdown(f"Validation of {source.describe()}") + clean_markdown(totals.clean),
        description="Great Expectations results and cleaning counts",
    )
    mlflow.log_artifact(str(validation_path))
    mlflow.log_dict(totals.clean.model_dump(), "clean_report.json")
    summary = {
        "rows_read": totals.rows_read,
        "rows_out": totals.rows_out,
        "rows_quarantined": totals.rows_quarantined,
        "quarantined_by_stage": totals.quarantined_by_stage,
    }
    log_metrics(
        {
            "rows_read": totals.rows_read,
            "rows_out": totals.rows_out,
            "rows_quarantined": totals.rows_quarantined,
            "chunks": totals.chunks,
            "chunks_resumed": totals.chunks_resumed,
            **{f"quarantined_{k}": v for k, v in totals.quarantined_by_stage.items()},
            **{f"clean_changed_{k}": v for k, v in totals.clean.changed.items()},
            "clean_truncated": totals.clean.truncated,
            "validation_passed": int(outcome.success),
        }
    )
    if totals.first_kept is not None:  # the first chunk's kept rows stand for the input (the counts are the run's)
        log_input(source, totals.first_kept, summary)
