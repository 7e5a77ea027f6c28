"""Cutting a table into batches of rows for a model."""

from __future__ import annotations

import pandas as pd

from openautoglm.core.data.schema import ROW_ID
from openautoglm.core.errors import MissingColumnsError
from openautoglm.core.nlp.types import Row


def frame_rows(frame: pd.DataFrame, text_column: str, text_pair_column: str | None = None) -> list[Row]:
    """The model inputs of a cleaned frame, in order."""
    needed = [text_column, *([text_pair_column] if text_pair_column else [])]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise MissingColumnsError(
            f"Column(s) {missing} not in the data; columns are {[c for c in frame.columns if c != ROW_ID]}.",
            hint="set --text-column (and --text-pair-column for matching), or rename the columns when loading",
        )
    texts = frame[text_column].tolist()
    pairs = frame[text_pair_column].tolist() if text_pair_column else [None] * len(frame)
    return [
        Row(row_id=int(i), text=str(t), text_pair=None if p is None or p is pd.NA else str(p))
        for i, t, p in zip(frame[ROW_ID].tolist(), texts, pairs, strict=True)
    ]


def batches(rows: list[Row], size: int) -> list[tuple[Row, ...]]:
    """Consecutive batches of at most ``size`` rows."""
    if size < 1:
        raise ValueError("batch size must be >= 1")
    return [tuple(rows[i : i + size]) for i in range(0, len(rows), size)]
