"""Which SQL statements a source may run: one read-only query, checked by parsing before anything is sent.

A source's ``query`` is either a table name or a statement. A statement must be exactly one ``SELECT`` (``WITH``
and set operations included) with nothing inside it that writes or locks: no DML or DDL anywhere in the tree
(a data-modifying ``WITH`` included), no ``SELECT ... INTO``, no ``FOR UPDATE``/``FOR SHARE``, no statement the
parser cannot read (sqlglot's ``Command``). The database's read-only transaction is the second line of defence
(functions with side effects, such as ``nextval``, are refused there).
"""

from __future__ import annotations

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


def check_read_query(query: str, backend: str | None = None) -> str:
    """``query`` without a trailing semicolon if it is one read-only ``SELECT``, else :class:`ConfigurationError`.

    Args:
        query: The statement.
        backend: SQLAlchemy backend name (``postgresql``, ``mysql``, ``mariadb``, ``sqlite``) for the dialect.
    """
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
    return text
