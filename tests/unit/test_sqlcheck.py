"""An SQL source's statement must be one read-only SELECT: parsed (sqlglot) before anything is sent."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


#: Valid SELECTs as tokens; a comment may go between any two of them (sqlglot reads ``ORDER BY`` and ``UNION ALL``
#: as one keyword each, so a comment inside one is a parse error: refused, which is safe).
_SELECTS = [
    ["SELECT", "text", ",", "label", "FROM", "feedback", "WHERE", "label", "=", "'正面'", "ORDER BY", "id"],
    ["WITH", "good", "AS", "(", "SELECT", "*", "FROM", "feedback", ")", "SELECT", "text", "FROM", "good"],
    ["SELECT", "text", "FROM", "a", "UNION ALL", "SELECT", "text", "FROM", "b"],
    ["SELECT", "count", "(", "*", ")", "AS", "n", "FROM", "feedback"],
]
_BACKENDS = st.sampled_from(["postgresql", "mysql", "mariadb", "sqlite", None])
_SPACE = st.text(alphabet=" \t\r\n", max_size=3)
#: Comment text that is neither a mark nor the end of the comment.
_BODY = st.text(alphabet="abcMm0123456789 _,.'=()\n", max_size=20)


@st.composite
def _executable_comment(draw: st.DrawFn) -> str:
    """``/*!50000 INTO OUTFILE ... */``, ``/* + NO_INDEX(t) */``, ``/*m!100100 ... */`` and the like."""
    mark = draw(st.sampled_from(["!", "+", "M!", "m!"]))
    version = draw(st.sampled_from(["", "50000", "100100", "32302"]))
    body = draw(st.sampled_from([" INTO OUTFILE '/tmp/x' ", " SQL_NO_CACHE ", "", " NO_INDEX(feedback) "]))
    comment = f"/*{draw(_SPACE)}{mark}{version}{body}*/"
    wrap = draw(st.sampled_from(["{}", "/* plain {} */", "/* {} */", "'{}'", "/*!{}*/"]))
    return wrap.format(comment)


def _insert(tokens: list[str], at: int, text: str) -> str:
    return " ".join([*tokens[:at], text, *tokens[at:]])


@settings(max_examples=300, deadline=None)
@given(data=st.data(), backend=_BACKENDS)
def test_executable_comments_and_hints_are_always_refused(data: st.DataObject, backend: str | None) -> None:
    tokens = data.draw(st.sampled_from(_SELECTS))
    at = data.draw(st.integers(0, len(tokens)))
    query = _insert(tokens, at, data.draw(_executable_comment()))
    with pytest.raises(ConfigurationError, match=r"/\*! \.\.\. \*/") as refused:
        check_read_query(query, backend)
    assert "string literal" in str(refused.value)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), backend=_BACKENDS)
def test_ordinary_comments_still_pass(data: st.DataObject, backend: str | None) -> None:
    tokens = data.draw(st.sampled_from(_SELECTS))
    at = data.draw(st.integers(0, len(tokens)))
    body = data.draw(_BODY.filter(lambda b: not b.lstrip().lower().startswith(("!", "+", "m!"))))
    comment = data.draw(st.sampled_from([f"/*{body}*/", f"-- {body.replace(chr(10), ' ')}\n"]))
    query = _insert(tokens, at, comment)
    assert check_read_query(query, backend) == query.strip().rstrip(";").strip()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT text FROM t /*! INTO OUTFILE '/tmp/x' */",  # the measured attack
        "SELECT text FROM t /*!50000 INTO OUTFILE '/tmp/x' */",
        "SELECT text FROM t /*M!100100 INTO OUTFILE '/tmp/x' */",
        "SELECT /*+ MAX_EXECUTION_TIME(0) */ text FROM t",
        "SELECT '/*!' AS text",  # refused in a literal too: the hint says how to write it
    ],
)
def test_the_measured_attack_and_its_variants(query: str) -> None:
    for backend in ("mysql", "mariadb", "postgresql", "sqlite"):
        with pytest.raises(ConfigurationError, match="never sent"):
            check_read_query(query, backend)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT /* Mary's note */ text FROM t",
        "SELECT text FROM t -- !important",
        "SELECT 'a+b' AS text, 1 + 2 AS n",
        "SELECT text FROM t WHERE a != b",
    ],
)
def test_near_misses_pass(query: str) -> None:
    assert check_read_query(query, "mysql") == query


@pytest.mark.parametrize(
    "query",
    [
        "SELECT set_config('statement_timeout', '0', false) AS text",
        "SELECT pg_catalog.set_config('statement_timeout', '0', false), pg_sleep(1) FROM generate_series(1, 9)",
        "SELECT * FROM set_config('statement_timeout', '0', false)",
        "SELECT text FROM t WHERE id IN (SELECT length(set_config('a.b', 'c', false)))",
    ],
)
def test_set_config_is_refused(query: str) -> None:
    """It would lift the statement timeout for every later FETCH of a streamed PostgreSQL read."""
    with pytest.raises(ConfigurationError, match="set_config"):
        check_read_query(query, "postgresql")


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
