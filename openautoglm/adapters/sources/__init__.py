"""Data sources: CSV, JSONL, Parquet and SQL readers behind one registry (:data:`SOURCES`).

Importing this package registers every reader.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import SecretStr

from openautoglm.adapters.sources import delimited, jsonl, parquet, sql  # noqa: F401  (registration)
from openautoglm.adapters.sources.base import SOURCES
from openautoglm.adapters.sources.specs import (
    SUFFIX_KINDS,
    CsvSource,
    JsonlSource,
    ParquetSource,
    SourceSpec,
    SqlSource,
)
from openautoglm.core.data.schema import Dataset


def read_source(
    spec: SourceSpec,
    *,
    columns: Sequence[str] | None = None,
    progress: bool | None = None,
    password: SecretStr | None = None,
) -> Dataset:
    """Read any source spec with its registered reader."""
    reader = SOURCES.resolve(spec.kind)
    return reader(spec, columns=columns, progress=progress, password=password)


__all__ = [
    "SOURCES",
    "SUFFIX_KINDS",
    "CsvSource",
    "JsonlSource",
    "ParquetSource",
    "SourceSpec",
    "SqlSource",
    "read_source",
]
