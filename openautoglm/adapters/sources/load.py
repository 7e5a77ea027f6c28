"""Loading a source, written once: a spec from a path or a URL, its password, the read and the renames.

``DataLoader`` (the SDK face), the ``load-data`` task, the graph tables and the CLI all build and read sources
through these functions; streamed runs read it a chunk at a time through :func:`iter_source`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from openautoglm.adapters.sources import SUFFIX_KINDS, CsvSource, JsonlSource, ParquetSource, SqlSource, read_source
from openautoglm.adapters.sources.base import CHUNKED_SOURCES
from openautoglm.adapters.sources.specs import SourceSpec
from openautoglm.core.data.schema import Dataset
from openautoglm.core.data.values import rename_columns
from openautoglm.core.errors import ConfigurationError

#: File kind -> its spec class (``tsv`` is CSV with a tab).
FILE_SPECS: dict[str, type[CsvSource] | type[JsonlSource] | type[ParquetSource]] = {
    "csv": CsvSource,
    "tsv": CsvSource,
    "jsonl": JsonlSource,
    "parquet": ParquetSource,
}


def spec_from_path(path: str | Path, *, format: str | None = None, **options: Any) -> SourceSpec:
    """The spec of a file, its reader chosen from ``format`` or the suffix (.csv .tsv .jsonl .ndjson .parquet)."""
    p = Path(path)
    kind = format or SUFFIX_KINDS.get(p.suffix.lower())
    if kind is None:
        raise ConfigurationError(
            f"{p}: cannot tell the format from the suffix '{p.suffix}'.",
            hint="pass format='csv', 'jsonl' or 'parquet' (CLI: --format)",
        )
    if kind not in FILE_SPECS:
        raise ConfigurationError(f"Unknown file format '{kind}'.", hint=f"use one of {sorted(FILE_SPECS)}")
    if kind in ("csv", "tsv") and "delimiter" not in options and (kind == "tsv" or p.suffix.lower() == ".tsv"):
        options["delimiter"] = "\t"
    return FILE_SPECS[kind](path=p, **{k: v for k, v in options.items() if v is not None})


def sql_spec(url: str, query_or_table: str, *, password_env: str | None = None) -> tuple[SqlSource, SecretStr | None]:
    """The spec of a table or SELECT, and the password if the URL held one (taken out: it never reaches a log)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        parsed = None
    password = None
    if parsed is not None and parsed.password:
        password = SecretStr(str(parsed.password))
        url = parsed._replace(password=None).render_as_string(hide_password=False)
    return SqlSource(url=url, query=query_or_table, password_env=password_env), password


def env_password(spec: SourceSpec) -> SecretStr | None:
    """The password named by the spec's ``password_env``, or ``None`` when it names none."""
    env = getattr(spec, "password_env", None)
    if not env:
        return None
    value = os.environ.get(env)
    if value is None:
        raise ConfigurationError(
            f"The environment variable {env} (password_env) is not set.",
            hint=f"export {env}=... before running, or leave password_env empty",
        )
    return SecretStr(value)


def load_source(
    spec: SourceSpec,
    columns: Sequence[str] | None = None,
    rename: Mapping[str, str] | None = None,
    *,
    password: SecretStr | None = None,
    progress: bool | None = None,
) -> Dataset:
    """Read ``spec`` (password: the one given, else ``password_env``'s) and apply ``rename`` to its columns."""
    secret = password if password is not None else env_password(spec)
    dataset = read_source(spec, columns=columns, progress=progress, password=secret)
    return replace(dataset, frame=rename_columns(dataset.frame, rename))


def iter_source(
    spec: SourceSpec,
    columns: Sequence[str] | None = None,
    rename: Mapping[str, str] | None = None,
    *,
    chunk_rows: int,
    password: SecretStr | None = None,
    progress: bool | None = False,
) -> Iterator[Dataset]:
    """:func:`load_source` a chunk of about ``chunk_rows`` records at a time (row ids go on across chunks)."""
    secret = password if password is not None else env_password(spec)
    reader = CHUNKED_SOURCES.resolve(spec.kind)
    for chunk in reader(spec, columns=columns, progress=progress, password=secret, chunk_rows=chunk_rows):
        yield replace(chunk, frame=rename_columns(chunk.frame, rename))
