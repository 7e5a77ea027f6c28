"""Turning source values into text, the same way for every source.

Every loaded column is text (pandas ``string`` dtype): the tasks here read text and labels, and one rule for
all sources makes a table read from PostgreSQL, MariaDB, SQLite, Parquet or JSONL come out identical.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pandas as pd

from openautoglm.core.data.schema import ROW_ID
from openautoglm.core.errors import ConfigurationError, MissingColumnsError


def to_text(value: Any) -> str | None:
    """Render one value as text; missing values (None, NaN, NA) become ``None``.

    Integral numbers lose their fraction (``1.0``, ``Decimal('1.00')`` -> ``"1"``), so a label stored as a
    float in one database and an integer in another reads the same. Booleans become ``"true"``/``"false"``
    (as in JSON), dates ISO 8601, bytes UTF-8, lists and objects JSON.
    """
    if value is None or value is pd.NA:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(float(value))
    if isinstance(value, Decimal):
        if value.is_nan():
            return None
        if value == value.to_integral_value():
            return str(int(value))
        return format(value.normalize(), "f")
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="backslashreplace")
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    if hasattr(value, "item"):  # numpy scalars
        return to_text(value.item())
    return str(value)


def select_columns(available: Sequence[str], columns: Sequence[str] | None, *, source: str) -> list[str]:
    """Check requested columns against the source's columns; ``None`` means all.

    Raises:
        MissingColumnsError: naming the missing columns, the available ones, and close matches.
    """
    if columns is None:
        chosen = list(available)
    else:
        chosen = list(columns)
        missing = [c for c in chosen if c not in available]
        if missing:
            import difflib

            guesses = {m: difflib.get_close_matches(m, list(available), n=1) for m in missing}
            suggestion = ", ".join(f"'{m}' -> '{g[0]}'" for m, g in guesses.items() if g)
            raise MissingColumnsError(
                f"{source}: column(s) {missing} not found; the source has {list(available)}.",
                hint=(f"did you mean {suggestion}? " if suggestion else "")
                + "pass columns=[...] with names from the source, and rename={...} to change them",
            )
        duplicated = sorted({c for c in chosen if chosen.count(c) > 1})
        if duplicated:
            raise ConfigurationError(f"columns lists {duplicated} more than once.")
    if ROW_ID in chosen:
        raise ConfigurationError(
            f"{source}: the source has a column named '{ROW_ID}', which this package adds itself.",
            hint=f"leave '{ROW_ID}' out of columns=[...] (in SQL, select it under an alias: "
            f"SELECT {ROW_ID} AS source_row_id ...)",
        )
    return chosen


def rename_columns(frame: pd.DataFrame, rename: Mapping[str, str] | None) -> pd.DataFrame:
    """Rename loaded columns; every key must be a loaded column and no two columns may end up with one name."""
    if not rename:
        return frame
    unknown = [k for k in rename if k not in frame.columns or k == ROW_ID]
    if unknown:
        raise ConfigurationError(
            f"rename names column(s) {unknown} that were not loaded; loaded: "
            f"{[c for c in frame.columns if c != ROW_ID]}.",
            hint="rename keys are source column names that are also listed in columns=[...]",
        )
    result = [rename.get(c, c) for c in frame.columns]
    clashes = sorted({c for c in result if result.count(c) > 1})
    if clashes:
        raise ConfigurationError(f"rename would give two columns the name(s) {clashes}.")
    return frame.rename(columns=dict(rename))
