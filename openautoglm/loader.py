"""``DataLoader``: the seed's data face. Pick a source, then ``load(columns=[...], rename={...})``.

Example:
    >>> dataset = DataLoader.from_csv("examples/user_feedback.csv").load(columns=["text", "label"])
    >>> len(dataset), dataset.columns
    (60, ['text', 'label'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import SecretStr

from openautoglm.adapters.sources import CsvSource, JsonlSource, ParquetSource, SourceSpec
from openautoglm.adapters.sources.load import load_source, spec_from_path, sql_spec
from openautoglm.adapters.sources.specs import OnError
from openautoglm.core.data.schema import Dataset


class DataLoader:
    """A configured source, ready to load.

    Build one with :meth:`from_csv`, :meth:`from_jsonl`, :meth:`from_parquet`, :meth:`from_sql` or
    :meth:`from_path`; every constructor takes ``on_error="raise"`` (stop at the first malformed record with its
    file and line) or ``"quarantine"`` (set malformed records aside with their reasons and go on).
    """

    def __init__(self, spec: SourceSpec, *, password: SecretStr | None = None) -> None:
        self.spec = spec
        self._password = password

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        *,
        encoding: str | None = None,
        delimiter: str = ",",
        on_error: OnError = "raise",
    ) -> DataLoader:
        """A CSV file with a header row; ``encoding`` is detected when omitted (UTF-8, BOM, GBK/GB18030...)."""
        return cls(CsvSource(path=Path(path), encoding=encoding, delimiter=delimiter, on_error=on_error))

    @classmethod
    def from_jsonl(cls, path: str | Path, *, encoding: str | None = None, on_error: OnError = "raise") -> DataLoader:
        """A JSON Lines file (one object per line)."""
        return cls(JsonlSource(path=Path(path), encoding=encoding, on_error=on_error))

    @classmethod
    def from_parquet(cls, path: str | Path) -> DataLoader:
        """A Parquet file."""
        return cls(ParquetSource(path=Path(path)))

    @classmethod
    def from_sql(cls, url: str, query_or_table: str, *, password_env: str | None = None) -> DataLoader:
        """A table (read in primary-key order) or a SELECT statement.

        Args:
            url: SQLAlchemy URL. ``postgresql://`` and ``mysql://`` get the bundled drivers (psycopg, PyMySQL).
                A password in the URL is taken out and kept apart, so it never reaches logs or reports.
            query_or_table: ``table``, ``schema.table`` or ``SELECT ...``.
            password_env: Environment variable to read the password from instead.
        """
        spec, password = sql_spec(url, query_or_table, password_env=password_env)
        return cls(spec, password=password)

    @classmethod
    def from_path(cls, path: str | Path, *, format: str | None = None, **options: object) -> DataLoader:
        """Choose the reader from ``format`` or the file suffix (.csv .tsv .jsonl .ndjson .parquet)."""
        return cls(spec_from_path(path, format=format, **options))

    def load(
        self,
        columns: Sequence[str] | None = None,
        rename: Mapping[str, str] | None = None,
        *,
        progress: bool | None = None,
    ) -> Dataset:
        """Read the source.

        Args:
            columns: Source columns to keep, in this order (default: all).
            rename: ``{source_name: new_name}`` applied after loading, e.g. ``{"review": "text"}``.
            progress: Show a progress bar (default: only on a terminal).

        Returns:
            A :class:`Dataset`: text columns plus a stable ``row_id``; malformed records are in
            ``dataset.quarantine`` when the loader was built with ``on_error="quarantine"``.
        """
        return load_source(self.spec, columns, rename, password=self._password, progress=progress)

    def __repr__(self) -> str:
        return f"DataLoader({self.spec.describe()!r})"
