"""The typed dataset every stage passes on, and the quarantine that keeps rejected rows.

Invariant, checked at each stage: ``rows_read == len(frame) + len(quarantine)``. A row leaves the frame only
by entering the quarantine with a reason; nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from openautoglm.core.errors import AccountingError

#: Name of the stable row id column added to every loaded dataset. It is the 0-based position of the record
#: in its source (malformed records included), so it is the same on every rerun over the same source.
ROW_ID = "row_id"

#: Columns of the quarantine table.
QUARANTINE_COLUMNS = ("row_id", "stage", "rule", "reason", "location", "record")


@dataclass(frozen=True)
class QuarantinedRow:
    """One rejected row.

    Attributes:
        row_id: The row's id (its position in the source).
        stage: ``load``, ``clean`` or ``validate``.
        rule: A short machine-readable rule name (``wrong_field_count``, ``duplicate``, ``label_in_set``).
        reason: A readable reason naming the column and value.
        location: ``file:line`` or ``source:record`` where the row came from.
        record: The raw record (JSON text) so the row can be repaired and re-fed.
    """

    row_id: int
    stage: str
    rule: str
    reason: str
    location: str
    record: str


def quarantine_records(rows: Iterable[QuarantinedRow]) -> pd.DataFrame:
    """Build a quarantine table from rows (an empty table with the right columns when there are none)."""
    frame = pd.DataFrame([r.__dict__ for r in rows], columns=list(QUARANTINE_COLUMNS))
    return frame.astype({"row_id": "int64"})


def record_json(record: Mapping[str, Any]) -> str:
    """Serialise a raw record for the quarantine file; NA values become null."""
    return json.dumps({k: (None if _is_na(v) else v) for k, v in record.items()}, ensure_ascii=False, default=str)


def _is_na(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and dicts
        return False


@dataclass(frozen=True)
class Dataset:
    """A loaded table of text records plus the rows rejected on the way.

    Attributes:
        frame: The good rows; all columns are pandas ``string`` dtype, plus :data:`ROW_ID` (int64) first.
        source: A readable, secret-free description of where the rows came from.
        rows_read: How many records the source held (good and bad).
        quarantine: Rejected rows with their reasons (see :data:`QUARANTINE_COLUMNS`).
        lines: Source line (or record) number per row id, used to point at a row in later messages;
            ``None`` when the source has no lines (SQL, Parquet).
    """

    frame: pd.DataFrame
    source: str
    rows_read: int
    quarantine: pd.DataFrame = field(default_factory=lambda: quarantine_records([]))
    lines: pd.Series | None = None

    def __post_init__(self) -> None:
        self.check_accounting()

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def columns(self) -> list[str]:
        """The data columns (without the row id)."""
        return [c for c in self.frame.columns if c != ROW_ID]

    def to_pandas(self) -> pd.DataFrame:
        """A copy of the good rows."""
        return self.frame.copy()

    def head(self, n: int = 5) -> pd.DataFrame:
        """The first ``n`` good rows."""
        return self.frame.head(n)

    def location(self, row_id: int) -> str:
        """Where a row came from: ``file:line`` for files with lines, else ``source:record N``."""
        if self.lines is not None and row_id in self.lines.index:
            return f"{self.source}:{int(self.lines.loc[row_id])}"
        return f"{self.source}:record {row_id}"

    def check_accounting(self) -> None:
        """Raise :class:`AccountingError` unless every read row is either kept or quarantined once."""
        kept, quarantined = len(self.frame), len(self.quarantine)
        if kept + quarantined != self.rows_read:
            raise AccountingError(
                f"{self.source}: {self.rows_read} rows read but {kept} kept + {quarantined} quarantined."
            )
        if quarantined and self.quarantine["row_id"].duplicated().any():
            raise AccountingError(f"{self.source}: a row was quarantined twice.")

    def reject(self, rejected: pd.DataFrame) -> Dataset:
        """Move the rows named in ``rejected`` (a quarantine table) out of the frame and into the quarantine.

        ``location`` and ``record`` are filled from this dataset where the caller left them empty.
        """
        if rejected.empty:
            return self
        rejected = rejected.reset_index(drop=True)
        ids = [int(r) for r in rejected["row_id"].tolist()]
        mask = self.frame[ROW_ID].isin(set(ids))
        records = self.frame[mask].set_index(ROW_ID)[self.columns].to_dict("index")
        locations, texts = rejected["location"].tolist(), rejected["record"].tolist()
        rejected["location"] = [where or self.location(rid) for where, rid in zip(locations, ids, strict=True)]
        rejected["record"] = [
            text or (record_json(records[rid]) if rid in records else text)
            for text, rid in zip(texts, ids, strict=True)
        ]
        return replace(
            self,
            frame=self.frame[~mask].reset_index(drop=True),
            quarantine=pd.concat([self.quarantine, rejected], ignore_index=True)
            if not self.quarantine.empty
            else rejected.reset_index(drop=True),
        )

    def with_frame(self, frame: pd.DataFrame) -> Dataset:
        """The same dataset with a transformed frame of the same rows (same row ids)."""
        return replace(self, frame=frame)

    def summary(self) -> dict[str, Any]:
        """Counts for reports: rows read, kept and quarantined per stage."""
        per_stage = self.quarantine.groupby("stage").size().to_dict() if len(self.quarantine) else {}
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_out": len(self.frame),
            "rows_quarantined": len(self.quarantine),
            "quarantined_by_stage": {str(k): int(v) for k, v in per_stage.items()},
        }

    def preview(self, rows: int = 5) -> list[dict[str, Any]]:
        """The first ``rows`` good rows (data columns only), for a look at what a stage produced."""
        return frame_preview(self.frame, rows)

    def __repr__(self) -> str:
        return (
            f"Dataset(source={self.source!r}, rows={len(self.frame)}, quarantined={len(self.quarantine)}, "
            f"columns={self.columns})"
        )


def split_rows(frame: pd.DataFrame, rows: int) -> list[pd.DataFrame]:
    """Cut a frame into consecutive chunks of at most ``rows`` rows (one empty chunk for an empty frame)."""
    if rows < 1:
        raise ValueError("rows must be >= 1")
    if len(frame) <= rows:
        return [frame]
    return [frame.iloc[start : start + rows].reset_index(drop=True) for start in range(0, len(frame), rows)]


def frame_preview(frame: pd.DataFrame, rows: int = 5) -> list[dict[str, Any]]:
    """The first ``rows`` rows of a frame as JSON-able records, without the row id column."""
    head = frame.drop(columns=[ROW_ID], errors="ignore").head(rows)
    return [{str(k): _plain(v) for k, v in r.items()} for r in head.to_dict("records")]


def _plain(value: Any) -> Any:
    """A JSON-able cell: missing values as None, numpy scalars as Python ones."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) else value
