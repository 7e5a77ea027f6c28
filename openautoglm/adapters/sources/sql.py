"""Tables and queries from SQL databases through SQLAlchemy (PostgreSQL via psycopg, MySQL/MariaDB via
PyMySQL, SQLite built in).

A table is read ordered by its primary key, so the same table gives the same rows in the same order (and the
same row ids) in every database. The URL's password never appears in messages.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import (
    InterfaceError,
    NoSuchModuleError,
    NoSuchTableError,
    OperationalError,
    SQLAlchemyError,
)

from openautoglm.adapters.progress import progress_bar
from openautoglm.adapters.sources.base import SOURCES, RowCollector
from openautoglm.adapters.sources.specs import SqlSource
from openautoglm.core.data.schema import Dataset
from openautoglm.core.data.sqlcheck import check_read_query
from openautoglm.core.data.values import select_columns, to_text
from openautoglm.core.errors import DataSourceError, SourceUnavailableError

_DRIVER_PACKAGES = {"psycopg": "psycopg[binary]", "pymysql": "PyMySQL", "psycopg2": "psycopg2-binary"}


def make_engine(url: str, password: SecretStr | None = None) -> Engine:
    """An engine for ``url`` with ``password`` set in, or a :class:`DataSourceError` that says what to install."""
    parsed = make_url(url)
    if password is not None:
        parsed = parsed.set(password=password.get_secret_value())
    try:
        return sa.create_engine(parsed, pool_pre_ping=True)
    except NoSuchModuleError:
        raise DataSourceError(
            f"No SQLAlchemy dialect for '{parsed.drivername}'.",
            hint="use postgresql+psycopg://, mysql+pymysql://, mariadb+pymysql:// or sqlite:///",
        ) from None
    except ModuleNotFoundError as exc:
        package = _DRIVER_PACKAGES.get(exc.name or "", exc.name)
        raise DataSourceError(
            f"The database driver '{exc.name}' for {parsed.get_backend_name()} is not installed.",
            hint=f"pip install {package}",
        ) from None


@SOURCES.register("sql", "database")
def read_sql(
    spec: SqlSource,
    *,
    columns: Sequence[str] | None = None,
    progress: bool | None = None,
    password: SecretStr | None = None,
) -> Dataset:
    """Read a table (ordered by primary key) or the rows of a SELECT statement.

    Raises:
        DataSourceError: cannot connect, unknown table, or the statement fails (the database's message is kept,
            the password is not).
    """
    name = spec.describe()
    engine = make_engine(spec.url, password)
    try:
        try:
            conn = engine.connect()
        except (OperationalError, InterfaceError) as exc:
            raise SourceUnavailableError(
                f"{name}: cannot reach the database: {_first_line(exc)}",
                hint="check that the server is up and the host, port, user and password are right",
            ) from None
        with conn:
            _read_only(conn)
            statement, total = _statement(conn, spec, columns, name)
            result = conn.execution_options(stream_results=True, yield_per=spec.chunk_rows).execute(statement)
            keys = list(result.keys())
            chosen = select_columns(keys, columns, source=name)
            position = [keys.index(c) for c in chosen]
            collector = RowCollector(name, chosen, spec.on_error, fix_hint="")
            with progress_bar(f"reading {name}", total, progress) as update:
                for part in result.partitions(spec.chunk_rows):
                    for row in part:
                        collector.good([to_text(row[i]) for i in position], None)
                    update(collector.count)
    except SQLAlchemyError as exc:
        raise DataSourceError(
            f"{name}: {_first_line(exc)}",
            hint="check the table or statement and that the user may read it",
        ) from None
    finally:
        engine.dispose()
    return collector.finish(has_lines=False)


def _statement(
    conn: sa.Connection, spec: SqlSource, columns: Sequence[str] | None, name: str
) -> tuple[sa.Executable, int | None]:
    if not spec.is_table:
        return sa.text(check_read_query(spec.query, conn.dialect.name)), None
    schema, _, table_name = spec.query.rpartition(".")
    try:
        table = sa.Table(table_name, sa.MetaData(), autoload_with=conn, schema=schema or None)
    except NoSuchTableError:
        tables = sa.inspect(conn).get_table_names(schema=schema or None)
        raise DataSourceError(f"{name}: no table '{spec.query}'.", hint=f"tables here: {sorted(tables)}") from None
    chosen = select_columns(list(table.columns.keys()), columns, source=name)
    order = list(table.primary_key.columns) or [table.columns[c] for c in chosen]
    statement = sa.select(*[table.columns[c] for c in chosen]).order_by(*order)
    total = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    return statement, int(total)


#: Per dialect: the statement that makes every later transaction of the session read-only.
_READ_ONLY = {
    "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    "mysql": "SET SESSION TRANSACTION READ ONLY",
    "mariadb": "SET SESSION TRANSACTION READ ONLY",
    "sqlite": "PRAGMA query_only = ON",
}


def _read_only(conn: sa.Connection) -> None:
    """Make the session read-only before anything is read (the engine is disposed after the read)."""
    statement = _READ_ONLY.get(conn.dialect.name)
    if statement is None:
        raise DataSourceError(
            f"Reading from {conn.dialect.name} is not supported: a read-only session cannot be guaranteed.",
            hint="use PostgreSQL, MySQL/MariaDB or SQLite",
        )
    conn.exec_driver_sql(statement)
    conn.commit()  # the setting holds from the next transaction on, which is where every read happens


def _first_line(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    message = str(orig) if orig is not None else str(exc)
    return message.strip().splitlines()[0] if message.strip() else type(exc).__name__
