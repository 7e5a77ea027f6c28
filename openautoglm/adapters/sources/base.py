"""What every reader shares: the reader registry and the collector that numbers rows and quarantines bad ones."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from pydantic import SecretStr

from openautoglm.core.data.schema import ROW_ID, Dataset, QuarantinedRow, quarantine_records
from openautoglm.core.errors import DataSourceError, MalformedRecordError
from openautoglm.core.registry import Registry


class SourceReader(Protocol):
    """Reads a source spec into a :class:`Dataset` (all columns text, row ids added)."""

    def __call__(
        self,
        spec: Any,
        *,
        columns: Sequence[str] | None,
        progress: bool | None,
        password: SecretStr | None,
    ) -> Dataset: ...


#: Readers by source kind (``csv``, ``jsonl``, ``parquet``, ``sql``).
SOURCES: Registry[SourceReader] = Registry("data source")


class ChunkReader(Protocol):
    """Reads a source spec a chunk of about ``chunk_rows`` records at a time (``None``: one chunk), as
    :class:`SourceReader` would read it whole: row ids count on across chunks, bad records are quarantined in
    the chunk they fall in."""

    def __call__(
        self,
        spec: Any,
        *,
        columns: Sequence[str] | None = None,
        progress: bool | None = None,
        password: SecretStr | None = None,
        chunk_rows: int | None = None,
    ) -> Iterator[Dataset]: ...


#: Chunked readers by source kind, for runs streamed from source to sink.
CHUNKED_SOURCES: Registry[ChunkReader] = Registry("chunked data source")


def single(chunks: Iterator[Dataset]) -> Dataset:
    """The one chunk a chunked reader gives with ``chunk_rows=None`` (its file closed at once)."""
    with closing(chunks) as generator:  # type: ignore[type-var]
        return next(generator)


class RowCollector:
    """Collects good rows and bad records in source order, numbering both (the row id is the position).

    Args:
        source: Readable source name for messages.
        columns: The columns good rows carry, in order.
        on_error: ``raise`` stops at the first bad record; ``quarantine`` keeps it with its reason.
        fix_hint: What the user can do about a bad record (shown when raising).
        start: The first record's row id (records before it were read by another collector).
    """

    def __init__(self, source: str, columns: Sequence[str], on_error: str, fix_hint: str, start: int = 0) -> None:
        self.source = source
        self.columns = list(columns)
        self.on_error = on_error
        self.fix_hint = fix_hint
        self._values: list[list[str | None]] = [[] for _ in self.columns]
        self._ids: list[int] = []
        self._lines: list[int] = []
        self._bad: list[QuarantinedRow] = []
        self.count = start  # the next record's row id (a chunk read from the middle of a file starts there)
        self._taken = start  # records handed on by finish() so far

    def good(self, values: Sequence[str | None], line: int | None) -> None:
        """Add a row whose values are in :attr:`columns` order."""
        for store, value in zip(self._values, values, strict=True):
            store.append(value)
        self._ids.append(self.count)
        self._lines.append(line if line is not None else self.count)
        self.count += 1

    def bad(self, rule: str, reason: str, line: int | None, record: str) -> None:
        """Quarantine (or raise for) one malformed record."""
        location = f"{self.source}:{line}" if line is not None else f"{self.source}:record {self.count}"
        if self.on_error == "raise":
            raise MalformedRecordError(
                reason,
                location=location,
                hint=f"{self.fix_hint}; or load with on_error='quarantine' (CLI: --lenient) to set bad records "
                "aside in the quarantine file and go on",
            )
        self._bad.append(
            QuarantinedRow(row_id=self.count, stage="load", rule=rule, reason=reason, location=location, record=record)
        )
        self.count += 1

    def finish(self, *, has_lines: bool) -> Dataset:
        """The dataset of good rows, with the bad ones in its quarantine (those since the last :meth:`finish`:
        a streamed reader calls it once a chunk, and the row ids go on counting)."""
        frame = pd.DataFrame({ROW_ID: np.asarray(self._ids, dtype="int64")})
        for name, values in zip(self.columns, self._values, strict=True):
            frame[name] = pd.array(values, dtype="string")
        lines = pd.Series(self._lines, index=self._ids, dtype="int64") if has_lines else None
        dataset = Dataset(
            frame=frame,
            source=self.source,
            rows_read=self.count - self._taken,
            quarantine=quarantine_records(self._bad),
            lines=lines,
        )
        self._values = [[] for _ in self.columns]
        self._ids, self._lines, self._bad = [], [], []
        self._taken = self.count
        return dataset

    @property
    def pending(self) -> int:
        """Records (good and bad) collected since the last :meth:`finish`."""
        return self.count - self._taken


_UNDECODED = re.compile("[\udc80-\udcff]")


def printable(text: str, encoding: str) -> str:
    """Undo ``surrogateescape`` for display: undecodable bytes become ``\\xNN``."""
    if not _UNDECODED.search(text):
        return text
    return text.encode(encoding, "surrogateescape").decode(encoding, "backslashreplace")


def has_undecodable(values: Sequence[str]) -> bool:
    """True when a value holds bytes that did not decode (``surrogateescape`` leaves U+DC80-U+DCFF)."""
    return any(_UNDECODED.search(value) for value in values)


def existing_file(path: Path | str) -> Path:
    """The path, expanded, if it is a file; else a :class:`DataSourceError` saying where it looked."""
    p = Path(path).expanduser()
    if not p.is_file():
        where = "it is a folder" if p.is_dir() else f"relative paths start from {Path.cwd()}"
        raise DataSourceError(f"{p}: no such file.", hint=f"check the path ({where})")
    return p
