"""A batch run streamed from source to sink a chunk at a time, in bounded memory, resumable by chunk.

Written once for the flows that read, clean, validate, (infer) and write rows (``ingest``, ``run_task``): they
differ only in the :class:`ChunkSteps` they pass. Each chunk is cleaned with the same rules as a whole-file read;
rows repeating an earlier row's texts are found across chunks through a :class:`~openautoglm.core.data.digests.
DigestSet` (24 bytes a distinct row); each chunk is validated, gated, handed to ``submit`` (inference on the task
runner: up to ``in_flight`` chunks wait for their results while the next one is read), and written to the
:class:`ChunkStore` as part files. At the end the parts are joined into the run's files, one part in memory at a
time, and ``rows read = rows out + rows quarantined`` is checked over the whole run.

A chunk's parts are keyed by (source digest, chunk index, parameters digest): a run killed mid-way and started
again with the same source and parameters re-reads and re-cleans the finished chunks (for the duplicate check)
but neither validates, infers nor writes them again. A run whose chunk size is at least the source's row count
is one chunk: the same steps as a whole-file run, the same rows, order, quarantine reasons and metrics.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import pickle
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from openautoglm.adapters.models.base import BatchStats
from openautoglm.adapters.sinks import WRITERS, OutputFormat
from openautoglm.adapters.sources.specs import SourceSpec
from openautoglm.adapters.validation import (
    ExpectationSummary,
    GateMode,
    ValidationConfig,
    ValidationOutcome,
    apply_gate,
)
from openautoglm.core.data.clean import (
    CleanConfig,
    CleanReport,
    drop_empty_and_duplicates,
    merge_reports,
    normalize_frame,
)
from openautoglm.core.data.digests import DigestSet, drop_seen_duplicates, row_digests
from openautoglm.core.data.schema import ROW_ID, Dataset, quarantine_records
from openautoglm.core.errors import AccountingError, DataSourceError
from openautoglm.core.nlp.types import RowResult


class StreamParams(BaseModel):
    """How a run streams its rows: the chunk size and how many chunks may wait on the task runner at once.

    Declared once here; the ``ingest`` and ``run_task`` flows' parameter models take it (and so their CLI options,
    forms and JSON Schemas)."""

    chunk_rows: int = Field(
        default=20_000,
        ge=1,
        description="Rows read, cleaned, validated, inferred and written per chunk (a run holds a few chunks, "
        "never the whole source; a chunk at least the source's size is a whole-file run).",
    )
    chunks_in_flight: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Chunks whose batches may be on the task runner at once while the next chunk is read.",
    )


class ChunkRecord(BaseModel):
    """What one finished chunk held and what happened to it (its marker in the :class:`ChunkStore`)."""

    model_config = ConfigDict(extra="forbid")

    index: int
    rows_read: int
    rows_out: int
    quarantined_by_stage: dict[str, int]
    clean: CleanReport
    validation_success: bool = True
    expectations: list[ExpectationSummary] = Field(default_factory=list)
    stats: dict[str, Any] = Field(default_factory=dict)
    status: dict[str, int] = Field(default_factory=dict)
    batches: int = 0
    batches_cached: int = 0

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined_by_stage.values())


@dataclass
class Inferred:
    """A chunk's output rows (the kept rows, with the model's columns for an inference run) and its counts."""

    output: pd.DataFrame
    results: list[RowResult] | None = None
    stats: BatchStats = field(default_factory=BatchStats)
    batches: int = 0
    batches_cached: int = 0


class ChunkSteps(Protocol):
    """The steps a flow runs on each chunk (on its task runner), and what it writes."""

    def normalise(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, CleanReport]:
        """The text rules on one chunk (row-local)."""
        ...

    def validate(self, dataset: Dataset) -> ValidationOutcome:
        """The task's expectations on one chunk's rows."""
        ...

    def submit(self, dataset: Dataset) -> Callable[[], Inferred]:
        """Start the chunk's work (inference batches on the task runner); the callable waits for its output."""
        ...


def digest_of(value: Any) -> str:
    """The SHA-256 of a JSON-able value (keys sorted): the parameters part of a chunk's key."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def source_digest(spec: SourceSpec, block: int = 1 << 20) -> str:
    """The source part of a chunk's key: a file's content (BLAKE2b, read a block at a time), or an SQL source's
    URL and statement (a table whose rows change between a killed run and its rerun is caught only where a
    chunk's row count changes: remove the store, :meth:`ChunkStore.clear`, to start such a run over)."""
    path = getattr(spec, "path", None)
    h = hashlib.blake2b(digest_size=16)
    h.update(spec.model_dump_json(exclude={"chunk_rows"}).encode())
    if path is not None and Path(path).is_file():
        with Path(path).open("rb") as handle:
            while piece := handle.read(block):
                h.update(piece)
    return h.hexdigest()


class ChunkStore:
    """The finished chunks of one (source, parameters) pair: ``chunk-NNNNNN.out.parquet`` (the output rows),
    ``.quarantine.parquet``, ``.results.pkl`` (the model's answers, kept for metrics against a gold column) and
    the ``.json`` marker, written last, so a chunk is finished exactly when its marker exists."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def under(cls, root: Path, source: str, params: str) -> ChunkStore:
        """The store for a source digest and a parameters digest under ``root``."""
        return cls(root / f"{source[:24]}-{params[:24]}")

    def _path(self, index: int, suffix: str) -> Path:
        return self.folder / f"chunk-{index:06d}.{suffix}"

    def record(self, index: int) -> ChunkRecord | None:
        """The chunk's marker, when it finished in this or an earlier run."""
        path = self._path(index, "json")
        if not path.is_file():
            return None
        return ChunkRecord.model_validate_json(path.read_text(encoding="utf-8"))

    def save(self, record: ChunkRecord, output: pd.DataFrame, quarantine: pd.DataFrame, results: Any) -> None:
        """Write a finished chunk's parts, then its marker (each through a temporary name and a rename)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        index = record.index
        _atomic(self._path(index, "out.parquet"), lambda p: output.to_parquet(p, index=False))
        _atomic(self._path(index, "quarantine.parquet"), lambda p: quarantine.to_parquet(p, index=False))
        if results is not None:
            _atomic(self._path(index, "results.pkl"), lambda p: p.write_bytes(pickle.dumps(results)))
        _atomic(self._path(index, "json"), lambda p: p.write_text(record.model_dump_json(), encoding="utf-8"))

    def frames(self, kind: str, count: int, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """The ``out`` or ``quarantine`` part of chunks ``0..count-1``, one at a time."""
        for index in range(count):
            yield pd.read_parquet(self._path(index, f"{kind}.parquet"), columns=columns)

    def results(self, count: int) -> Iterator[list[RowResult]]:
        """The model's answers of chunks ``0..count-1``, one chunk at a time."""
        for index in range(count):
            yield pickle.loads(self._path(index, "results.pkl").read_bytes())

    def join(self, kind: str, count: int, folder: Path, stem: str, fmt: OutputFormat) -> Path:
        """Join the parts into ``folder/stem.fmt`` as :func:`~openautoglm.adapters.sinks.write_frame` writes one
        frame, one part in memory at a time."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stem}.{fmt}"
        JOINERS.get(fmt, _join_by_frames(fmt))(self.frames(kind, count), path)
        return path

    def clear(self) -> None:
        """Remove the store (after the run's files are written, or to start over)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _atomic(path: Path, write: Callable[[Path], Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    write(temporary)
    os.replace(temporary, path)


def _join_parquet(frames: Iterator[pd.DataFrame], path: Path) -> None:
    writer: pq.ParquetWriter | None = None
    try:
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            elif table.schema != writer.schema:
                table = table.cast(writer.schema)  # a part whose column is all missing has a null type
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def _join_csv(frames: Iterator[pd.DataFrame], path: Path) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:  # the byte-order mark once, at the start
        for i, frame in enumerate(frames):
            frame.to_csv(handle, index=False, header=i == 0)


def _join_jsonl(frames: Iterator[pd.DataFrame], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        for frame in frames:
            if len(frame):
                frame.to_json(handle, orient="records", lines=True, force_ascii=False)


def _join_by_frames(fmt: str) -> Callable[[Iterator[pd.DataFrame], Path], None]:
    def join(frames: Iterator[pd.DataFrame], path: Path) -> None:  # a format without an appending joiner
        WRITERS.resolve(fmt)(pd.concat(list(frames), ignore_index=True), path)

    return join


#: Joiners that append part after part, by output format.
JOINERS: dict[str, Callable[[Iterator[pd.DataFrame], Path], None]] = {
    "parquet": _join_parquet,
    "csv": _join_csv,
    "jsonl": _join_jsonl,
}


@dataclass
class Streamed:
    """A streamed run's totals over its chunks."""

    source: str
    chunks: int = 0
    chunks_resumed: int = 0
    rows_read: int = 0
    rows_out: int = 0
    quarantined_by_stage: dict[str, int] = field(default_factory=dict)
    clean: CleanReport = field(default_factory=CleanReport)
    validation_success: bool = True
    expectations: dict[tuple[str, str], ExpectationSummary] = field(default_factory=dict)
    stats: BatchStats = field(default_factory=BatchStats)
    status: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    batches_cached: int = 0
    rows_inferred: int = 0  # rows this run sent to the model (none of a chunk an earlier run wrote)
    rows_resumed: int = 0  # output rows of the chunks an earlier run wrote
    first_kept: Dataset | None = None
    failures: list[pd.DataFrame] = field(default_factory=list)

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined_by_stage.values())

    def add(self, record: ChunkRecord, *, resumed: bool = False) -> None:
        """Count a finished chunk in; one an earlier run wrote (``resumed``) made no model call in this run, and its
        batches count as cached."""
        self.chunks += 1
        self.chunks_resumed += int(resumed)
        self.rows_resumed += record.rows_out if resumed else 0
        self.rows_read += record.rows_read
        self.rows_out += record.rows_out
        for stage, count in record.quarantined_by_stage.items():
            self.quarantined_by_stage[stage] = self.quarantined_by_stage.get(stage, 0) + count
        self.clean = self.clean.merge(record.clean)
        self.validation_success &= record.validation_success
        for summary in record.expectations:
            key = (summary.expectation, summary.column)
            before = self.expectations.get(key)
            self.expectations[key] = (
                summary
                if before is None
                else before.model_copy(
                    update={
                        "success": before.success and summary.success,
                        "checked": before.checked + summary.checked,
                        "failed": before.failed + summary.failed,
                        "examples": (before.examples + summary.examples)[:3],
                    }
                )
            )
        if not resumed:
            self.stats = self.stats.merge(BatchStats.from_dict(record.stats))
        for status, count in record.status.items():
            self.status[status] = self.status.get(status, 0) + count
        self.batches += record.batches
        self.batches_cached += record.batches if resumed else record.batches_cached

    def outcome(self) -> ValidationOutcome:
        """The chunks' validations as one outcome (counts summed; the raw results are per chunk and not kept)."""
        failures = pd.concat(self.failures, ignore_index=True) if self.failures else quarantine_records([])
        summaries = list(self.expectations.values())
        raw = {
            "success": self.validation_success,
            "chunks": self.chunks,
            "results": [s.model_dump() for s in summaries],
        }
        return ValidationOutcome(success=self.validation_success, expectations=summaries, failures=failures, raw=raw)

    def check_accounting(self) -> None:
        """Raise :class:`AccountingError` unless every row read was written out or quarantined once."""
        if self.rows_read != self.rows_out + self.rows_quarantined:
            raise AccountingError(
                f"{self.source}: {self.rows_read} rows read but {self.rows_out} written + "
                f"{self.rows_quarantined} quarantined."
            )


def clean_chunk(
    chunk: Dataset,
    normalise: Callable[[pd.DataFrame], tuple[pd.DataFrame, CleanReport]],
    config: CleanConfig,
    seen: DigestSet,
) -> tuple[Dataset, CleanReport]:
    """Normalise a chunk, then quarantine its empty rows and the rows whose texts an earlier row had (in this
    chunk or an earlier one), with the reasons a whole-file clean gives."""
    normalised, report = normalise(chunk.frame)
    kept, rejected, drop_report = drop_empty_and_duplicates(
        normalised, config.model_copy(update={"drop_duplicates": False})
    )
    if config.drop_duplicates:
        kept, duplicates = drop_seen_duplicates(kept, config.text_columns, seen)
        rejected = pd.concat([rejected, duplicates], ignore_index=True) if len(duplicates) else rejected
        drop_report = drop_report.model_copy(
            update={"dropped_duplicate": len(duplicates), "rows_out": drop_report.rows_out - len(duplicates)}
        )
    cleaned = replace(chunk, frame=normalised).reject(rejected)
    if len(cleaned.frame) != len(kept):
        raise AccountingError(f"{chunk.source}: cleaning kept {len(kept)} rows but the chunk {len(cleaned)}")
    return cleaned, merge_reports([report, drop_report], rows_in=len(chunk.frame))


def repeated_ids(chunks: Iterable[Dataset], config: CleanConfig, id_column: str) -> set[str]:
    """The ids that more than one row kept by cleaning holds, over all chunks (a first pass, when the source is
    more than one chunk and an id column must be unique: a chunk's validation sees only its own rows)."""
    texts, ids, repeated = DigestSet(), DigestSet(), set()
    for chunk in chunks:
        cleaned, _ = clean_chunk(chunk, lambda frame: normalize_frame(frame, config), config, texts)
        present = cleaned.frame[[ROW_ID, id_column]].dropna(subset=[id_column])
        first = ids.first_ids(row_digests(present, [id_column]), present[ROW_ID].to_numpy(dtype="int64"))
        repeated.update(str(v) for v in present[id_column][first >= 0].tolist())
    return repeated


def validate_chunk(
    steps: ChunkSteps, dataset: Dataset, config: ValidationConfig, repeated: set[str]
) -> ValidationOutcome:
    """The chunk's validation, where an id the chunk holds once is repeated in another chunk failing as it would
    in a whole-file validation: one stand-in row per such id joins the chunk (its texts and label valid, its row
    id negative), so the id check flags the chunk's row with the same rule and words; the stand-ins are then
    taken out of the failures and the counts."""
    if not len(dataset):
        return _PASSED
    id_column = config.id_column
    present = sorted(set(dataset.frame[id_column].dropna().astype(str)) & repeated) if id_column and repeated else []
    if not present:
        return steps.validate(dataset)
    ghosts = pd.DataFrame({c: pd.array([None] * len(present), dtype="string") for c in dataset.columns})
    ghosts.insert(0, ROW_ID, -1 - pd.RangeIndex(len(present)).to_numpy())
    ghosts[id_column] = pd.array(present, dtype="string")
    for column in config.text_columns:
        ghosts[column] = "x" * max(1, config.min_length)
    if config.label_column and config.labels:
        ghosts[config.label_column] = config.labels[0]
    joined = pd.concat([dataset.frame, ghosts.astype(dataset.frame.dtypes.to_dict())], ignore_index=True)
    outcome = steps.validate(replace(dataset, frame=joined, rows_read=dataset.rows_read + len(ghosts)))
    n = len(ghosts)
    expectations = [
        e.model_copy(
            update={
                "checked": e.checked - n,
                "failed": e.failed - (n if e.column == id_column and e.expectation.endswith("_unique") else 0),
            }
        )
        for e in outcome.expectations
    ]
    failures = outcome.failures[outcome.failures["row_id"] >= 0].reset_index(drop=True)
    return ValidationOutcome(success=outcome.success, expectations=expectations, failures=failures, raw={})


_PASSED = ValidationOutcome(success=True, expectations=[], failures=quarantine_records([]), raw={})


def stream(
    open_chunks: Callable[[], Iterator[Dataset]],
    steps: ChunkSteps,
    store: ChunkStore,
    *,
    clean: CleanConfig,
    validation: ValidationConfig,
    gate: GateMode,
    in_flight: int,
    keep_results: bool = False,
    totals: Streamed | None = None,
) -> Streamed:
    """Run every chunk (``open_chunks()`` reads the source from its start) through ``steps`` into ``store``
    (skipping chunks it already holds), and return the totals (``totals``, when given, is filled as the chunks
    finish, so a caller still has them when this raises). ``gate='fail'`` raises
    :class:`~openautoglm.core.errors.ValidationGateError` at the first chunk with a failing row (the chunks before
    it stay in the store)."""
    seen = DigestSet()
    totals = totals if totals is not None else Streamed(source="")
    pending: deque[tuple[int, Dataset, CleanReport, ValidationOutcome, Callable[[], Inferred]]] = deque()

    def finish() -> None:
        index, dataset, report, outcome, collect = pending.popleft()
        inferred = collect()
        summary = dataset.summary()
        record = ChunkRecord(
            index=index,
            rows_read=dataset.rows_read,
            rows_out=len(inferred.output),
            quarantined_by_stage=summary["quarantined_by_stage"],
            clean=report,
            validation_success=outcome.success,
            expectations=outcome.expectations,
            stats=inferred.stats.as_dict(),
            status={str(k): int(v) for k, v in inferred.output["status"].value_counts().items()}
            if "status" in inferred.output
            else {},
            batches=inferred.batches,
            batches_cached=inferred.batches_cached,
        )
        store.save(record, inferred.output, dataset.quarantine, inferred.results if keep_results else None)
        totals.add(record)
        totals.rows_inferred += len(inferred.results or [])
        # The chunk's answers sit in reference cycles (task states and futures) that only a full collection frees,
        # and full collections grow rarer as the heap grows: without this the flow process kept every chunk's.
        gc.collect()

    chunks = open_chunks()
    head = [c for c in (next(chunks, None), next(chunks, None)) if c is not None]
    repeated: set[str] = set()
    if len(head) > 1 and validation.id_column and validation.id_column != ROW_ID:
        repeated = repeated_ids(open_chunks(), clean, validation.id_column)
    for index, chunk in enumerate(chain(head, chunks)):
        totals.source = chunk.source
        dataset, report = clean_chunk(chunk, steps.normalise, clean, seen)
        done = store.record(index)
        if done is not None:
            if done.rows_read != chunk.rows_read:
                raise DataSourceError(
                    f"{chunk.source}: chunk {index} held {done.rows_read} rows in the earlier run, {chunk.rows_read} "
                    "now.",
                    hint=f"the source changed since: remove {store.folder} to start the run over",
                )
            totals.add(done, resumed=True)
            continue
        outcome = validate_chunk(steps, dataset, validation, repeated)
        if not outcome.success:
            totals.failures.append(outcome.failures[["row_id", "rule"]])
        try:
            dataset = apply_gate(dataset, outcome, gate)
        except Exception:
            totals.validation_success = False
            for summary in outcome.expectations:
                totals.expectations.setdefault((summary.expectation, summary.column), summary)
            raise
        if totals.first_kept is None:
            totals.first_kept = dataset
        pending.append((index, dataset, report, outcome, steps.submit(dataset)))
        if len(pending) >= in_flight:
            finish()
    while pending:
        finish()
    totals.check_accounting()
    return totals
