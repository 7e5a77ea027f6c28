"""Which SQL statements a source may run: one read-only query, checked by parsing before anything is sent.

A source's ``query`` is either a table name or a statement. A statement must be exactly one ``SELECT`` (``WITH``
and set operations included) with nothing inside it that writes or locks: no DML or DDL anywhere in the tree
(a data-modifying ``WITH`` included), no ``SELECT ... INTO``, no ``FOR UPDATE``/``FOR SHARE``, no statement the
parser cannot read (sqlglot's ``Command``), no ``set_config`` (it would lift the session's statement timeout for
the rest of a streamed read). The database's read-only transaction is the second line of defence (functions with
side effects, such as ``nextval``, are refused there).

MySQL and MariaDB run the text inside ``/*! ... */`` (and ``/*M! ... */``) as SQL and read ``/*+ ... */`` as
optimizer hints, while sqlglot, like every other database, reads them as comments: ``SELECT text FROM t /*! INTO
OUTFILE '/tmp/x' */`` would pass the parse and write a file on the database host. So the raw text is searched for
them first, for every dialect, and anywhere in it (string literals included: telling a literal from a comment
across dialects takes a second lexer, and a refused literal is easy to rewrite).
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from openautoglm.core.errors import ConfigurationError

#: SQLAlchemy backend name -> sqlglot dialect.
DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite"}

_WRITES: tuple[type[exp.Expression], ...] = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Command,
    exp.Into,
    exp.Lock,
    exp.Set,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Grant,
    exp.Use,
)

_HINT = "give a table name or one SELECT statement (WITH ... SELECT is fine); writes are never run"

#: ``/*`` then optional whitespace then ``!``, ``+`` or ``M!``. MySQL itself needs the mark right after ``/*``;
#: allowing whitespace and either case refuses a little more than it must, never less.
_EXECUTABLE_COMMENT = re.compile(r"/\*\s*(?:!|\+|m!)", re.IGNORECASE)

#: Functions a SELECT may call that change the session (PostgreSQL ``set_config`` can set ``statement_timeout``
#: to 0 for every later fetch of a streamed read; a read-only transaction allows it).
_SESSION_FUNCTIONS = frozenset({"set_config"})


def check_read_query(query: str, backend: str | None = None) -> str:
    """``query`` without a trailing semicolon if it is one read-only ``SELECT``, else :class:`ConfigurationError`.

    Args:
        query: The statement.
        backend: SQLAlchemy backend name (``postgresql``, ``mysql``, ``mariadb``, ``sqlite``) for the dialect.
    """
    mark = _EXECUTABLE_COMMENT.search(query)
    if mark is not None:
        raise ConfigurationError(
            f"The SQL query holds {mark.group(0)!r} at character {mark.start() + 1}: MySQL and MariaDB run the text"
            " of /*! ... */ and /*M! ... */ comments and read /*+ ... */ as optimizer hints, so such a query is never"
            " sent.",
            hint="remove that comment (plain /* ... */ and -- comments are fine); the check reads the raw text, so"
            " the same characters inside a string literal are refused too: build such a string with CONCAT or ||",
        )
    text = query.strip().rstrip(";").strip()
    try:
        statements = [s for s in sqlglot.parse(text, read=DIALECTS.get(backend or "")) if s is not None]
    except ParseError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "parse error"
        raise ConfigurationError(f"The SQL query cannot be read: {first[:200]}", hint=_HINT) from None
    if len(statements) != 1:
        raise ConfigurationError(f"The SQL query holds {len(statements)} statements; one is allowed.", hint=_HINT)
    (statement,) = statements
    if not isinstance(statement, exp.Query):
        kind = type(statement).__name__.upper()
        raise ConfigurationError(f"The SQL query is a {kind} statement, not a SELECT.", hint=_HINT)
    for node in statement.walk():
        if isinstance(node, _WRITES):
            kind = type(node).__name__.upper()
            raise ConfigurationError(f"The SQL query contains {kind}; only reading is allowed.", hint=_HINT)
        if isinstance(node, exp.Func) and _function_name(node) in _SESSION_FUNCTIONS:
            raise ConfigurationError(
                f"The SQL query calls {_function_name(node)}(), which changes the session's settings.", hint=_HINT
            )
    return text


def _function_name(node: exp.Func) -> str:
    """The lower-case name a call is made by (``pg_catalog.set_config(...)`` and ``"set_config"(...)`` alike)."""
    name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
    return name.lower()
