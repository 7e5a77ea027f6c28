"""Writing frames to files: Parquet, CSV (UTF-8 with BOM so spreadsheet programs read Chinese) or JSONL; and a
run's JSON reports."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from openautoglm.core.registry import Registry

OutputFormat = Literal["parquet", "csv", "jsonl"]
Writer = Callable[[pd.DataFrame, Path], None]

#: File writers by format; the file suffix is the format name.
WRITERS: Registry[Writer] = Registry("output format")


@WRITERS.register("parquet")
def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Parquet, keeping dtypes."""
    frame.to_parquet(path, index=False)


@WRITERS.register("csv")
def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV in UTF-8 with a byte-order mark."""
    frame.to_csv(path, index=False, encoding="utf-8-sig")


@WRITERS.register("jsonl")
def write_jsonl(frame: pd.DataFrame, path: Path) -> None:
    """One JSON object per line, non-ASCII kept as is."""
    frame.to_json(path, orient="records", lines=True, force_ascii=False)


def write_frame(frame: pd.DataFrame, folder: Path, stem: str, fmt: OutputFormat) -> Path:
    """Write ``frame`` to ``folder/stem.fmt`` (folder created) and return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.{fmt}"
    WRITERS.resolve(fmt)(frame, path)
    return path


def write_sql(
    frame: pd.DataFrame,
    url: str,
    table: str,
    *,
    password: str | None = None,
    if_exists: Literal["replace", "append", "fail"] = "replace",
) -> int:
    """Write ``frame`` to a database table (created if absent); returns the rows written.

    Each statement is held to ``OPENAUTOGLM_SQL_STATEMENT_TIMEOUT_S`` (see ``make_engine``).

    Raises:
        DataSourceError: a statement ran over that limit (the transaction is rolled back).
    """
    from pandas.errors import DatabaseError
    from pydantic import SecretStr
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from openautoglm.adapters.sources.sql import make_engine, timed_out, timeout_error
    from openautoglm.settings import get_settings

    seconds = get_settings().sql_statement_timeout_s
    engine = make_engine(url, SecretStr(password) if password else None, timeout_s=seconds)
    try:
        with engine.begin() as conn:
            written = frame.to_sql(table, conn, if_exists=if_exists, index=False, chunksize=1000)
    except (SQLAlchemyError, DatabaseError) as exc:  # pandas wraps the database's error in its own
        if timed_out(exc):
            parsed = make_url(url)
            where = f"{parsed.get_backend_name()}://{parsed.host or ''}/{parsed.database or ''} {table}"
            raise timeout_error(where, seconds) from None
        raise
    finally:
        engine.dispose()
    return int(written if written is not None else len(frame))


def write_json(path: Path, value: Any) -> Path:
    """Write ``value`` as JSON (UTF-8, indented, non-ASCII kept, anything else as ``str``), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return path
