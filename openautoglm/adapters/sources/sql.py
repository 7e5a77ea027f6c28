"""Tables and queries from SQL databases through SQLAlchemy (PostgreSQL via psycopg, MySQL/MariaDB via
PyMySQL, SQLite built in).

A table is read ordered by its primary key, so the same table gives the same rows in the same order (and the
same row ids) in every database. The URL's password never appears in messages.

Every session an engine of :func:`make_engine` opens (sources, the preflight check and the SQL sink alike) stops a
statement that runs over ``OPENAUTOGLM_SQL_STATEMENT_TIMEOUT_S`` seconds, in the database itself where it can.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import (
    InterfaceError,
    NoSuchModuleError,
    NoSuchTableError,
    OperationalError,
    SQLAlchemyError,
)

from openautoglm.adapters.progress import progress_bar
from openautoglm.adapters.sources.base import CHUNKED_SOURCES, SOURCES, RowCollector, single
from openautoglm.adapters.sources.specs import SqlSource
from openautoglm.core.data.schema import Dataset
from openautoglm.core.data.sqlcheck import check_read_query
from openautoglm.core.data.values import select_columns, to_text
from openautoglm.core.errors import DataSourceError, SourceUnavailableError
from openautoglm.settings import get_settings

_DRIVER_PACKAGES = {"psycopg": "psycopg[binary]", "pymysql": "PyMySQL", "psycopg2": "psycopg2-binary"}

#: The setting that bounds every statement, named in the error a timed-out statement ends with.
TIMEOUT_SETTING = "OPENAUTOGLM_SQL_STATEMENT_TIMEOUT_S"


def make_engine(url: str, password: SecretStr | None = None, *, timeout_s: float | None = None) -> Engine:
    """An engine for ``url`` with ``password`` set in, or a :class:`DataSourceError` that says what to install.

    Args:
        url: SQLAlchemy URL.
        password: Set into the URL here, so it never travels with it.
        timeout_s: Longest a statement of any of its sessions may run; default the
            ``OPENAUTOGLM_SQL_STATEMENT_TIMEOUT_S`` setting (see :func:`limit_statements`).
    """
    parsed = make_url(url)
    if password is not None:
        parsed = parsed.set(password=password.get_secret_value())
    try:
        engine = sa.create_engine(parsed, pool_pre_ping=True)
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
    limit_statements(engine, get_settings().sql_statement_timeout_s if timeout_s is None else timeout_s)
    return engine


def limit_statements(engine: Engine, seconds: float) -> None:
    """Make every session ``engine`` opens stop a statement that runs over ``seconds``.

    PostgreSQL: ``statement_timeout`` (each ``FETCH`` of a streamed read is a statement of its own, so
    :func:`read_sql` also holds the whole read to the limit). MariaDB: ``max_statement_time``; MySQL:
    ``max_execution_time``, which MySQL applies to ``SELECT`` only. SQLite has no such setting: a progress
    handler interrupts a statement (its rows fetched included) once it has run ``seconds`` since it was sent.

    Raises:
        DataSourceError: a database none of these ways works for.
    """
    backend = engine.dialect.name
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_progress_handler)
        event.listen(engine, "before_cursor_execute", _sqlite_deadline(seconds))
        event.listen(engine, "checkin", _sqlite_disarm)
        return
    if backend not in ("postgresql", "mysql", "mariadb"):
        raise DataSourceError(
            f"{backend} is not supported: a statement timeout cannot be set on its sessions.",
            hint="use PostgreSQL, MySQL/MariaDB or SQLite",
        )

    def set_timeout(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(_timeout_statement(backend, cursor, seconds))
        finally:
            cursor.close()
        dbapi_connection.commit()  # a SET inside a transaction that is rolled back would be undone

    event.listen(engine, "connect", set_timeout)


def _timeout_statement(backend: str, cursor: Any, seconds: float) -> str:
    milliseconds = max(1, round(seconds * 1000))
    if backend == "postgresql":
        return f"SET statement_timeout = {milliseconds}"
    cursor.execute("SELECT VERSION()")  # a mysql:// URL may reach MariaDB, which names the setting differently
    if "mariadb" in str(cursor.fetchone()[0]).lower():
        return f"SET SESSION max_statement_time = {seconds:.3f}"
    return f"SET SESSION max_execution_time = {milliseconds}"


_DEADLINE = "openautoglm_statement_deadline"


def _sqlite_progress_handler(dbapi_connection: Any, record: Any) -> None:
    info = record.info  # the same dict as Connection.info, where each statement sets its deadline

    def over_time() -> bool:
        deadline: float = info.get(_DEADLINE, float("inf"))
        return time.monotonic() > deadline

    dbapi_connection.set_progress_handler(over_time, 10_000)


def _sqlite_deadline(seconds: float) -> Callable[..., None]:
    def arm(conn: sa.Connection, *_args: Any) -> None:
        conn.info[_DEADLINE] = time.monotonic() + seconds

    return arm


def _sqlite_disarm(_dbapi_connection: Any, record: Any) -> None:
    record.info.pop(_DEADLINE, None)


def timed_out(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it was raised from (pandas wraps them), is a statement stopped by
    :func:`limit_statements`."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, SQLAlchemyError):
            message = _first_line(seen)
            return message == "interrupted" or any(mark in message for mark in _TIMEOUT_MARKS)
        seen = seen.__cause__ or seen.__context__
    return False


#: How PostgreSQL, MariaDB and MySQL word a statement stopped by its timeout (SQLite says just "interrupted").
_TIMEOUT_MARKS = (
    "canceling statement due to statement timeout",
    "max_statement_time exceeded",
    "maximum statement execution time exceeded",
)


def timeout_error(name: str, seconds: float) -> DataSourceError:
    """The one-line error a statement stopped after ``seconds`` ends with."""
    return DataSourceError(
        f"{name}: the statement ran over the {seconds:g} s limit ({TIMEOUT_SETTING}) and was stopped.",
        hint=f"make the query cheaper (a WHERE on an indexed column, fewer rows), or raise {TIMEOUT_SETTING}",
    )


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
    return single(iter_sql(spec, columns=columns, progress=progress, password=password, chunk_rows=None))


@CHUNKED_SOURCES.register("sql")
def iter_sql(
    spec: SqlSource,
    *,
    columns: Sequence[str] | None = None,
    progress: bool | None = None,
    password: SecretStr | None = None,
    chunk_rows: int | None = None,
) -> Iterator[Dataset]:
    """:func:`read_sql` ``chunk_rows`` rows at a time, from one server-side cursor (``stream_results``): the
    database sends the rows as they are fetched. The statement timeout bounds the time spent reading (each
    fetch, and their sum), not the time the caller spends on a chunk between two fetches."""
    name = spec.describe()
    seconds = get_settings().sql_statement_timeout_s
    engine = make_engine(spec.url, password, timeout_s=seconds)
    spent = 0.0
    chunks = 0
    fetch = min(chunk_rows or spec.chunk_rows, spec.chunk_rows)
    try:
        try:
            conn = engine.connect()
        except (OperationalError, InterfaceError) as exc:
            raise SourceUnavailableError(
                f"{name}: cannot reach the database: {_first_line(exc)}",
                hint="check that the server is up and the host, port, user and password are right",
            ) from None
        with conn:
            started = time.monotonic()
            _read_only(conn)
            statement, total = _statement(conn, spec, columns, name)
            result = conn.execution_options(stream_results=True, yield_per=fetch).execute(statement)
            keys = list(result.keys())
            chosen = select_columns(keys, columns, source=name)
            position = [keys.index(c) for c in chosen]
            collector = RowCollector(name, chosen, spec.on_error, fix_hint="")
            with progress_bar(f"reading {name}", total, progress) as update:
                for part in result.partitions(fetch):
                    spent += time.monotonic() - started
                    if spent > seconds:  # each PostgreSQL FETCH has a limit of its own; the read too
                        raise timeout_error(name, seconds)
                    for row in part:
                        collector.good([to_text(row[i]) for i in position], None)
                    update(collector.count)
                    if chunk_rows is not None and collector.pending >= chunk_rows:
                        chunks += 1
                        yield collector.finish(has_lines=False)
                    started = time.monotonic()
    except SQLAlchemyError as exc:
        if timed_out(exc):
            raise timeout_error(name, seconds) from None
        raise DataSourceError(
            f"{name}: {_first_line(exc)}",
            hint="check the table or statement and that the user may read it",
        ) from None
    finally:
        engine.dispose()
    if collector.pending or not chunks:
        yield collector.finish(has_lines=False)


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
