"""Checks of a source before a flow run starts: the columns a run needs are in its header, the database answers.

A wrong column name otherwise shows up only after the Prefect server, the task runner and the read have started
(tens of seconds), and an unreachable database only after the load task's retries. These checks read the header
(CSV/TSV), the schema (Parquet) or the table's columns (SQL) and raise the same one-line errors the read would.
JSONL records may differ in their keys, and an SQL query's columns are known only by running it: there only the
file's presence or the connection is checked.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
from pydantic import SecretStr

from openautoglm.adapters.sources.base import existing_file
from openautoglm.adapters.sources.encoding import detect_encoding
from openautoglm.core.data.values import rename_columns, select_columns
from openautoglm.core.errors import DataSourceError, MissingColumnsError
from openautoglm.core.registry import Registry

#: Source kind -> its column names without reading the rows (``None``: not knowable cheaply).
HEADERS: Registry[Callable[[Any], list[str] | None]] = Registry("source header")


@HEADERS.register("csv", "tsv")
def _csv_header(spec: Any) -> list[str] | None:
    path = existing_file(spec.path)
    encoding = spec.encoding or detect_encoding(path)
    with path.open("rb") as raw:
        try:
            text = io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape", newline="")
            first = next(csv.reader(text, delimiter=spec.delimiter), None)
        except (LookupError, csv.Error, UnicodeDecodeError):
            return None  # the read reports it, with its line
    if not first:
        raise DataSourceError(f"{spec.path} is empty; a header row is expected.")
    return [h.strip() for h in first]


@HEADERS.register("parquet")
def _parquet_header(spec: Any) -> list[str] | None:
    import pyarrow.parquet as pq

    path = existing_file(spec.path)
    try:
        return list(pq.ParquetFile(path).schema_arrow.names)
    except Exception:  # an unreadable file is the read's to report
        return None


@HEADERS.register("jsonl")
def _jsonl_header(spec: Any) -> list[str] | None:
    existing_file(spec.path)
    return None


@HEADERS.register("sql")
def _sql_header(spec: Any) -> list[str] | None:
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    from openautoglm.adapters.sources.sql import make_engine
    from openautoglm.core.errors import SourceUnavailableError

    url = sa.engine.make_url(spec.url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        existing_file(url.database)  # connecting would create an empty database file
    password = os.environ.get(spec.password_env) if spec.password_env else None
    engine = make_engine(spec.url, SecretStr(password) if password is not None else None)
    try:
        with engine.connect() as conn:
            if not spec.is_table:
                return None
            schema, _, table = spec.query.rpartition(".")
            return [c["name"] for c in sa.inspect(conn).get_columns(table, schema=schema or None)]
    except sa.exc.NoSuchTableError:
        raise DataSourceError(f"{spec.describe()}: no table '{spec.query}'.", hint="check --query") from None
    except SQLAlchemyError as error:
        first = str(error.orig if getattr(error, "orig", None) is not None else error).splitlines()[0]
        raise SourceUnavailableError(
            f"{spec.describe()}: cannot reach the database: {first}",
            hint="check that the server is up and the host, port, user and password are right",
        ) from None
    finally:
        engine.dispose()


def check_source(
    spec: Any,
    *,
    columns: Sequence[str] | None = None,
    rename: Mapping[str, str] | None = None,
    needed: Sequence[str | None] = (),
) -> list[str] | None:
    """The columns a read of ``spec`` will give (after ``columns`` and ``rename``), checked to hold ``needed``.

    Returns ``None`` where the columns are not known before reading (JSONL, an SQL query).

    Raises:
        MissingColumnsError / ConfigurationError: as the read would, naming the columns there are.
        DataSourceError: no such file, an empty file, no such table. SourceUnavailableError: no database.
    """
    header = HEADERS.resolve(spec.kind)(spec)
    if header is None:
        return None
    chosen = select_columns(header, columns, source=spec.describe())
    loaded = [str(c) for c in rename_columns(pd.DataFrame(columns=chosen), rename).columns]
    missing = [c for c in dict.fromkeys(n for n in needed if n) if c not in loaded]
    if missing:
        raise MissingColumnsError(
            f"{spec.describe()}: column(s) {missing} not in the data; columns are {loaded}.",
            hint="name a column the source has (--text-column, --label-column, ...), or --rename old=new",
        )
    return loaded
