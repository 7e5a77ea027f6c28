"""Source specifications: small, hashable, secret-free values that say where the data is.

They cross task and flow boundaries (and become Prefect UI forms), so they never hold a password: an SQL
source names where its password comes from (an environment variable or a Prefect Secret block) instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from openautoglm.core.data.sqlcheck import check_read_query
from openautoglm.core.errors import ConfigurationError

OnError = Literal["raise", "quarantine"]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    on_error: OnError = Field(
        default="raise",
        description="What to do with a malformed record: 'raise' stops with the file and line; 'quarantine' "
        "sets it aside with the reason and goes on.",
    )
    chunk_rows: int = Field(default=50_000, ge=1, description="Records read per chunk.")


class _FileSpec(_Spec):
    path: Path = Field(description="Path of the file.")

    def describe(self) -> str:
        """A readable name for messages and reports."""
        return str(self.path)


class CsvSource(_FileSpec):
    """A delimited text file with a header row."""

    kind: Literal["csv"] = "csv"
    encoding: str | None = Field(
        default=None, description="Text encoding (utf-8, utf-8-sig, gbk, gb18030...); detected when empty."
    )
    delimiter: str = Field(default=",", min_length=1, max_length=1, description="Field separator.")


class JsonlSource(_FileSpec):
    """JSON Lines: one JSON object per line."""

    kind: Literal["jsonl"] = "jsonl"
    encoding: str | None = Field(default=None, description="Text encoding; detected when empty.")


class ParquetSource(_FileSpec):
    """An Apache Parquet file."""

    kind: Literal["parquet"] = "parquet"


_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}


class SqlSource(_Spec):
    """A table or a query in a database reachable with SQLAlchemy.

    ``query`` is a table name (``feedback`` or ``schema.feedback``; rows come ordered by the primary key so every
    read gives the same order) or a ``SELECT`` statement (rows in the statement's order).
    """

    # A rejected URL may hold a password: keep input values out of validation error messages.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    kind: Literal["sql"] = "sql"
    url: str = Field(
        description="SQLAlchemy URL without a password, e.g. postgresql+psycopg://user@host:5432/db, "
        "mysql+pymysql://root@127.0.0.1:3306/test, sqlite:///path/to.db"
    )
    query: str = Field(min_length=1, description="Table name or SELECT statement.")
    password_env: str | None = Field(
        default=None, description="Name of an environment variable holding the database password."
    )
    password_block: str | None = Field(
        default=None, description="Name of a Prefect Secret block holding the database password."
    )

    @field_validator("url")
    @classmethod
    def _no_password(cls, url: str) -> str:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigurationError(
                f"'{redact_url(url)}' is not a database URL.",
                hint="write it as dialect+driver://user@host:port/database, e.g. "
                "postgresql+psycopg://me@127.0.0.1:5432/test or sqlite:///data.db",
            ) from exc
        if parsed.password:
            raise ConfigurationError(
                "The database URL holds a password; specifications are logged and shown as flow parameters.",
                hint="remove it from the URL and set password_env (an environment variable name) or "
                "password_block (a Prefect Secret block name); in Python, DataLoader.from_sql() takes it apart "
                "for you",
            )
        driver = _DRIVERS.get(parsed.drivername)
        return parsed.set(drivername=driver).render_as_string() if driver else url

    @model_validator(mode="after")
    def _read_only(self) -> SqlSource:
        if not self.is_table:  # one SELECT, parsed before anything reaches the database
            check_read_query(self.query, make_url(self.url).get_backend_name())
        return self

    @property
    def is_table(self) -> bool:
        """True when ``query`` names a table rather than holding a statement."""
        return _is_identifier(self.query)

    def describe(self) -> str:
        """``dialect://host/db table`` without user or password."""
        parsed = make_url(self.url)
        where = parsed.database or ""
        host = f"{parsed.host}/" if parsed.host else ""
        what = self.query if self.is_table else "query"
        return f"{parsed.get_backend_name()}://{host}{where} {what}"


# user:password@ wherever it stands, so that a mistyped URL ("postgresql:/me:pw@host/db") is caught too.
_PASSWORD = re.compile(r"([A-Za-z0-9._%+~-]+:)[^@\s/:]+@")


def redact_url(text: str) -> str:
    """``text`` with any ``user:password@`` password replaced by ``***`` (URLs that do not parse included)."""
    return _PASSWORD.sub(r"\1***@", text)


def _is_identifier(text: str) -> bool:
    parts = text.strip().split(".")
    return 1 <= len(parts) <= 2 and all(p.replace("_", "a").isalnum() and not p[:1].isdigit() for p in parts)


SourceSpec = Annotated[CsvSource | JsonlSource | ParquetSource | SqlSource, Field(discriminator="kind")]

#: File suffix -> source kind, for ``DataLoader.from_path`` and the CLI's ``--format auto``.
SUFFIX_KINDS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
