"""An SQL source's statement must be one read-only SELECT: parsed (sqlglot) before anything is sent."""

from __future__ import annotations

import pytest

from openautoglm.adapters.sources import SqlSource
from openautoglm.adapters.sources.specs import redact_url
from openautoglm.core.data.sqlcheck import check_read_query
from openautoglm.core.errors import ConfigurationError


@pytest.mark.parametrize(
    "query",
    [
        "SELECT text, label FROM feedback WHERE label = '正面' ORDER BY id",
        "select * from feedback;",
        "WITH good AS (SELECT * FROM feedback WHERE label = 'a') SELECT text FROM good",
        "SELECT text FROM a UNION ALL SELECT text FROM b",
        "SELECT '{\"json\": 1}' AS text",
    ],
)
def test_reading_statements_pass(query: str) -> None:
    assert check_read_query(query, "postgresql") == query.strip().rstrip(";").strip()


@pytest.mark.parametrize(
    ("query", "backend"),
    [
        ("DROP TABLE feedback", "mariadb"),
        ("DELETE FROM feedback", "postgresql"),
        ("INSERT INTO feedback VALUES (1)", "sqlite"),
        ("UPDATE feedback SET label = 'x'", "mysql"),
        ("SELECT 1; DROP TABLE feedback", "postgresql"),
        ("WITH gone AS (DELETE FROM feedback RETURNING *) SELECT * FROM gone", "postgresql"),
        ("SELECT * INTO copy FROM feedback", "postgresql"),
        ("SELECT * FROM feedback FOR UPDATE", "mysql"),
        ("CREATE TABLE t AS SELECT 1", "sqlite"),
        ("TRUNCATE TABLE feedback", "postgresql"),
        ("GRANT ALL ON feedback TO public", "postgresql"),
        ("SET SESSION TRANSACTION READ WRITE", "mysql"),
        ("COMMIT", "postgresql"),
        ("VACUUM", "postgresql"),
        ("", "postgresql"),
    ],
)
def test_anything_else_is_refused(query: str, backend: str) -> None:
    with pytest.raises(ConfigurationError):
        check_read_query(query, backend)


def test_the_source_spec_refuses_it_at_once() -> None:
    with pytest.raises(ValueError, match="DROP"):
        SqlSource(url="mysql+pymysql://root@127.0.0.1:3306/test", query="DROP TABLE feedback")
    assert SqlSource(url="sqlite:///x.db", query="feedback").is_table


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://me:s3cret@db/x",
        "postgresql:/me:s3cret@db/x",  # mistyped: one slash
        "Cannot tell the format of 'postgres//me:s3cret@db/x'.",
    ],
)
def test_passwords_are_redacted_in_messages(text: str) -> None:
    assert "s3cret" not in redact_url(text) and "***@" in redact_url(text)
