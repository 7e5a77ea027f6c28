"""Apache Parquet files, read batch by batch with pyarrow."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import SecretStr

from openautoglm.adapters.progress import progress_bar
from openautoglm.adapters.sources.base import CHUNKED_SOURCES, SOURCES, RowCollector, existing_file, single
from openautoglm.adapters.sources.specs import ParquetSource
from openautoglm.core.data.schema import Dataset
from openautoglm.core.data.values import select_columns, to_text
from openautoglm.core.errors import DataSourceError


@SOURCES.register("parquet", "pq")
def read_parquet(
    spec: ParquetSource,
    *,
    columns: Sequence[str] | None = None,
    progress: bool | None = None,
    password: SecretStr | None = None,
) -> Dataset:
    """Read a Parquet file; values are rendered as text (see :func:`~openautoglm.core.data.values.to_text`)."""
    return single(iter_parquet(spec, columns=columns, progress=progress, chunk_rows=None))


@CHUNKED_SOURCES.register("parquet", "pq")
def iter_parquet(
    spec: ParquetSource,
    *,
    columns: Sequence[str] | None = None,
    progress: bool | None = None,
    password: SecretStr | None = None,
    chunk_rows: int | None = None,
) -> Iterator[Dataset]:
    """:func:`read_parquet` ``chunk_rows`` rows at a time (record batches; ``None``: the whole file at once)."""
    path = existing_file(spec.path)
    name = str(spec.path)
    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataSourceError(
            f"{name}: not a readable Parquet file ({exc}).",
            hint="check the file; for CSV or JSONL data use --format csv / jsonl",
        ) from None
    chosen = select_columns(handle.schema_arrow.names, columns, source=name)
    collector = RowCollector(name, chosen, spec.on_error, fix_hint="")
    total = handle.metadata.num_rows
    chunks = 0
    with handle, progress_bar(f"reading {path.name}", total, progress) as update:
        for batch in handle.iter_batches(
            batch_size=min(chunk_rows or spec.chunk_rows, spec.chunk_rows), columns=chosen
        ):
            data = [batch.column(c).to_pylist() for c in chosen]
            for values in zip(*data, strict=True):
                collector.good([to_text(v) for v in values], None)
            update(collector.count)
            if chunk_rows is not None and collector.pending >= chunk_rows:
                chunks += 1
                yield collector.finish(has_lines=False)
    if collector.pending or not chunks:
        yield collector.finish(has_lines=False)
