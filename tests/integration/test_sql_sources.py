"""The same table in PostgreSQL, MariaDB and SQLite gives the same ingest output.

Each test creates its own uniquely named table and drops it afterwards. PostgreSQL and MariaDB are the ones
running on this machine (127.0.0.1:5432 and :3306); the tests skip on a machine without them, and fail in CI.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from openautoglm import DataLoader
from openautoglm.adapters.sinks import write_sql
from openautoglm.adapters.sources import SqlSource
from openautoglm.adapters.sources.sql import read_sql
from openautoglm.core.errors import DataSourceError
from openautoglm.flows.ingest import IngestParams, ingest
from tests.conftest import require_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROWS = [
    (4, "配送很快，点赞！", "正面", 1.0),
    (1, "<p>味道一般</p>", "中性", 0.5),
    (3, "菜凉了", "负面", None),
    (2, "配送很快，点赞！", "正面", 1.0),  # same text as id 4; read in key order, so id 4 is the duplicate
    (5, "", "负面", 0.0),  # empty text -> quarantined
    (6, "还不错", "好评", 0.75),  # label outside the set -> quarantined
]

DATABASES = {
    "postgresql": ("postgresql+psycopg://postgres@127.0.0.1:5432/test", "127.0.0.1", 5432),
    "mariadb": ("mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4", "127.0.0.1", 3306),
}


def _create(url: str, table: str) -> None:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    kwargs = {"mysql_charset": "utf8mb4"} if engine.dialect.name in ("mysql", "mariadb") else {}
    tbl = sa.Table(
        table,
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("text", sa.String(200)),
        sa.Column("label", sa.String(20)),
        sa.Column("score", sa.Numeric(4, 2)),
        **kwargs,
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(tbl.insert(), [dict(zip(("id", "text", "label", "score"), r, strict=True)) for r in ROWS])
    engine.dispose()


def _drop(url: str, table: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


@pytest.fixture
def tables(tmp_path: Path) -> Iterator[dict[str, str]]:
    """One table per database, same rows; yields backend -> URL."""
    table = f"oag_feedback_{uuid.uuid4().hex[:8]}"
    urls = {name: url for name, (url, _, _) in DATABASES.items()}
    urls["sqlite"] = f"sqlite:///{tmp_path / 'feedback.db'}"
    made: list[str] = []
    try:
        for name, url in urls.items():
            if name in DATABASES:
                require_service(name, *DATABASES[name][1:])
            _create(url, table)
            made.append(url)
        yield {name: f"{url}#{table}" for name, url in urls.items()}
    finally:
        for url in made:
            _drop(url, table)


def test_same_table_same_output_in_three_databases(
    prefect_server: None, tables: dict[str, str], tmp_path: Path
) -> None:
    outputs = {}
    for name, url_and_table in tables.items():
        url, table = url_and_table.split("#")
        params = IngestParams(
            source=SqlSource(url=url, query=table),
            columns=["id", "text", "label", "score"],
            label_column="label",
            labels=["正面", "负面", "中性"],
            gate="quarantine",
            output_dir=tmp_path / name,
        )
        result = ingest(params)
        quarantine = pd.read_csv(result.quarantine_path, encoding="utf-8-sig")
        outputs[name] = (pd.read_parquet(result.data_path), quarantine.drop(columns=["location"]))
        assert result.rows_read == 6 and result.rows_out == 3

    reference_data, reference_quarantine = outputs["sqlite"]
    assert reference_data["id"].tolist() == ["1", "2", "3"]
    assert reference_data["text"].tolist() == ["味道一般", "配送很快,点赞!", "菜凉了"]
    assert reference_data["score"].tolist()[:2] == ["0.5", "1"] and pd.isna(reference_data["score"].iloc[2])
    assert sorted(reference_quarantine["reason"]) == [
        "label '好评' is not one of ['正面', '负面', '中性']",
        "same text as row 1",
        "text missing or empty after cleaning",
    ]
    for name, (data, quarantine) in outputs.items():
        pd.testing.assert_frame_equal(data, reference_data, obj=f"{name} data")
        pd.testing.assert_frame_equal(quarantine, reference_quarantine, obj=f"{name} quarantine")


def test_password_from_environment_and_a_query(tables: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    url, table = tables["postgresql"].split("#")
    monkeypatch.setenv("OAG_TEST_PG_PASSWORD", "unused-with-trust-auth")
    dataset = DataLoader.from_sql(
        url,
        f"SELECT text, label FROM {table} WHERE label = '正面' ORDER BY id",
        password_env="OAG_TEST_PG_PASSWORD",
    ).load()
    assert dataset.frame["text"].tolist() == ["配送很快，点赞！", "配送很快，点赞！"]


WRITES = (
    "DROP TABLE {t}",
    "DELETE FROM {t}",
    "SELECT * FROM {t}; DROP TABLE {t}",
    "UPDATE {t} SET label = 'x'",
    "SELECT * FROM {t} FOR UPDATE",
)


def test_writing_statements_are_refused_before_anything_is_sent(tables: dict[str, str]) -> None:
    from openautoglm.core.errors import ConfigurationError

    for backend in ("postgresql", "mariadb", "sqlite"):
        url, table = tables[backend].split("#")
        for statement in WRITES:
            with pytest.raises((ConfigurationError, ValueError), match=r"SELECT|allowed|statement"):
                DataLoader.from_sql(url, statement.format(t=table)).load()
        engine = sa.create_engine(url)
        with engine.connect() as conn:  # the table survived with every row
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() == len(ROWS)
        engine.dispose()


def test_a_select_with_side_effects_runs_in_a_read_only_transaction(tables: dict[str, str]) -> None:
    """PostgreSQL: nextval() is a SELECT the parser lets through; the read-only session refuses it."""
    from openautoglm.core.errors import DataSourceError

    url, table = tables["postgresql"].split("#")
    engine = sa.create_engine(url)
    sequence = f"{table}_seq"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SEQUENCE {sequence}"))
    try:
        with pytest.raises(DataSourceError, match="read-only"):
            DataLoader.from_sql(url, f"SELECT nextval('{sequence}') AS text").load()
        with engine.connect() as conn:
            assert conn.execute(sa.text(f"SELECT last_value, is_called FROM {sequence}")).one() == (1, False)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SEQUENCE IF EXISTS {sequence}"))
        engine.dispose()


def test_mariadb_session_is_read_only(tables: dict[str, str]) -> None:
    """MariaDB: the read uses a session whose transactions are READ ONLY (a write inside it would fail)."""
    from openautoglm.adapters.sources.sql import _read_only, make_engine

    url, table = tables["mariadb"].split("#")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _read_only(conn)
            with pytest.raises(sa.exc.OperationalError, match="READ ONLY"):
                conn.execute(sa.text(f"DELETE FROM {table}"))
    finally:
        engine.dispose()
    assert len(DataLoader.from_sql(url, table).load().frame) == len(ROWS)


#: A statement that runs far longer than the 1-s limit the timeout tests set (SQLite has no sleep: it counts).
SLOW = {
    "postgresql": "SELECT pg_sleep(30)::text AS text",
    "mariadb": "SELECT SLEEP(30) AS text",
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) AS text FROM c",
}
STOPPED = "ran over the 1 s limit (OPENAUTOGLM_SQL_STATEMENT_TIMEOUT_S) and was stopped."


def _database(backend: str, tmp_path: Path) -> str:
    """The URL of ``backend`` (skipped where it does not listen, failed in CI); SQLite a new file."""
    if backend == "sqlite":
        path = tmp_path / "slow.db"
        sqlite3.connect(path).close()
        return f"sqlite:///{path}"
    require_service(backend, *DATABASES[backend][1:])
    return DATABASES[backend][0]


def _stopped_within_seconds(error: pytest.ExceptionInfo[DataSourceError], started: float) -> None:
    assert time.monotonic() - started < 10, "the statement was not stopped"
    message, _, hint = str(error.value).partition("\n")
    assert message.endswith(STOPPED) and "OPENAUTOGLM_SQL_STATEMENT_TIMEOUT_S" in hint
    # no database error chained on: the error prints as its message and hint, with no driver traceback
    assert error.value.__cause__ is None and (error.value.__context__ is None or error.value.__suppress_context__)


@pytest.mark.parametrize("backend", list(SLOW))
def test_a_long_statement_is_stopped_at_the_timeout(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _database(backend, tmp_path)
    monkeypatch.setenv("OPENAUTOGLM_SQL_STATEMENT_TIMEOUT_S", "1")
    started = time.monotonic()
    with pytest.raises(DataSourceError) as stopped:
        DataLoader.from_sql(url, SLOW[backend]).load()
    _stopped_within_seconds(stopped, started)


def test_a_slowly_streamed_read_is_held_to_the_timeout_as_a_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: each FETCH of a streamed read is a statement of its own, each well under the limit."""
    require_service("postgresql", *DATABASES["postgresql"][1:])
    monkeypatch.setenv("OPENAUTOGLM_SQL_STATEMENT_TIMEOUT_S", "1")
    query = "SELECT pg_sleep(0.2)::text AS text FROM generate_series(1, 50)"
    started = time.monotonic()
    with pytest.raises(DataSourceError) as stopped:
        spec = SqlSource(url=DATABASES["postgresql"][0], query=query, chunk_rows=1)
        read_sql(spec, columns=None, progress=False, password=None)
    _stopped_within_seconds(stopped, started)


#: A trigger that makes every insert sleep 30 s.
SLOW_INSERT = {
    "postgresql": [
        "CREATE TABLE {t} (text TEXT)",
        "CREATE FUNCTION {t}_slow() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(30); RETURN NEW; END $$"
        " LANGUAGE plpgsql",
        "CREATE TRIGGER {t}_slow BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {t}_slow()",
    ],
    "mariadb": [
        "CREATE TABLE {t} (text VARCHAR(20))",
        "CREATE TRIGGER {t}_slow BEFORE INSERT ON {t} FOR EACH ROW SET @oag_slept = SLEEP(30)",
    ],
}


@pytest.mark.parametrize("backend", list(SLOW_INSERT))
def test_the_sql_sink_is_held_to_the_timeout(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _database(backend, tmp_path)
    table = f"oag_slow_sink_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in SLOW_INSERT[backend]:
                conn.exec_driver_sql(statement.format(t=table))
        monkeypatch.setenv("OPENAUTOGLM_SQL_STATEMENT_TIMEOUT_S", "1")
        started = time.monotonic()
        with pytest.raises(DataSourceError) as stopped:
            write_sql(pd.DataFrame({"text": ["a", "b"]}), url, table, if_exists="append")
        _stopped_within_seconds(stopped, started)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            if backend == "postgresql":
                conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {table}_slow()")
        engine.dispose()


def test_an_executable_comment_is_refused_through_the_cli(tables: dict[str, str], tmp_path: Path) -> None:
    """The review's query, through the real CLI against the machine's MariaDB: MariaDB runs what is inside
    ``/*! ... */`` (here INTO OUTFILE, which a READ ONLY transaction does not stop); the check refuses it before
    anything is sent, in one line, and no file appears."""
    import os
    import subprocess
    import sys

    url, table = tables["mariadb"].split("#")
    target = f"/tmp/oag-outfile-{uuid.uuid4().hex}"
    for query in (
        f"SELECT text FROM {table} /*! INTO OUTFILE '{target}' */",
        f"SELECT text FROM {table} /*!50001 INTO OUTFILE '{target}' */",
        f"SELECT /*+ MAX_EXECUTION_TIME(1) */ text FROM {table}",
    ):
        done = subprocess.run(
            [sys.executable, "-m", "openautoglm.cli", "ingest", url, "--query", query],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "OPENAUTOGLM_HOME": str(tmp_path / "home")},
        )
        assert done.returncode != 0, done.stdout
        assert "comment" in done.stderr.lower() and "Traceback" not in done.stderr, done.stderr
        assert not Path(target).exists()
