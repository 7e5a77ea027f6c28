"""CSV (and other delimited) files.

A well-formed file is parsed whole by pyarrow's CSV reader (C, ~10x the line-by-line speed). Anything that reader
cannot take exactly as the line path would (a malformed row, undecodable bytes, blank lines, an encoding that is
not ASCII-compatible) sends the file down the line path instead, the standard csv module row by row, which names
every bad row by its line number and quarantines it. Both give the same dataset on the same file.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pydantic import SecretStr

from openautoglm.adapters.progress import progress_bar
from openautoglm.adapters.sources.base import (
    CHUNKED_SOURCES,
    SOURCES,
    RowCollector,
    existing_file,
    has_undecodable,
    printable,
    single,
)
from openautoglm.adapters.sources.encoding import detect_encoding
from openautoglm.adapters.sources.specs import CsvSource
from openautoglm.core.data.schema import ROW_ID, Dataset, quarantine_records
from openautoglm.core.data.values import select_columns
from openautoglm.core.errors import DataSourceError, EncodingDetectionError, MalformedRecordError

# Long reviews are normal; the default 128 KiB field cap would reject them as "malformed".
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@SOURCES.register("csv", "tsv")
def read_csv(
    spec: CsvSource,
    *,
    columns: Sequence[str] | None = None,
    progress: bool | None = None,
    password: SecretStr | None = None,
) -> Dataset:
    """Read a delimited file with a header row.

    Empty fields load as missing values; blank lines are skipped. A row whose field count differs from the
    header, or that holds bytes the encoding cannot decode, is malformed.

    Raises:
        DataSourceError: the file is missing or empty.
        MissingColumnsError: a requested column is not in the header.
        MalformedRecordError: a malformed row, when ``spec.on_error == "raise"``.
    """
    return single(iter_csv(spec, columns=columns, progress=progress, chunk_rows=None))


@CHUNKED_SOURCES.register("csv", "tsv")
def iter_csv(
    spec: CsvSource,
    *,
    columns: Sequence[str] | None = None,
    progress: bool | None = None,
    password: SecretStr | None = None,
    chunk_rows: int | None = None,
) -> Iterator[Dataset]:
    """:func:`read_csv` a chunk of ``chunk_rows`` records at a time (row ids, line numbers and quarantine as one
    read gives them); ``None``: the whole file as one chunk.

    A file of at most ``chunk_rows`` lines is read whole (pyarrow's parser where it can); a longer one row by row
    through the csv module, so no more than a chunk is ever held.
    """
    path = existing_file(spec.path)
    encoding = spec.encoding or detect_encoding(path)
    total = path.stat().st_size
    name = str(spec.path)
    with path.open("rb") as raw, _text(raw, encoding, name) as text:
        reader = csv.reader(text, delimiter=spec.delimiter)
        header = _header(reader, name)
        chosen = select_columns(header, columns, source=name)
        if reader.line_num == 1 and (chunk_rows is None or newlines_at_most(path, chunk_rows)):
            with progress_bar(f"reading {path.name}", total, progress) as update:
                fast = _read_columnar(path, spec, encoding, header, chosen)
                if fast is not None:
                    update(total)
                    yield fast
                    return
        index = [header.index(c) for c in chosen]
        collector = RowCollector(
            name,
            chosen,
            spec.on_error,
            fix_hint=f"fix the row (fields are separated by {spec.delimiter!r}; quote fields that contain it)",
        )
        line = 1
        chunks = 0
        with progress_bar(f"reading {path.name}", total, progress) as update:
            while True:
                start = line + 1
                try:
                    record = next(reader)
                except StopIteration:
                    break
                except UnicodeDecodeError as exc:  # only with a codec that cannot surrogateescape
                    raise EncodingDetectionError(
                        f"{name}: bytes after line {line} do not decode as {encoding}: {exc.reason}",
                        hint="name the right encoding (CLI: --encoding)",
                    ) from None
                except csv.Error as exc:
                    line = reader.line_num
                    collector.bad("csv_syntax", f"unreadable CSV: {exc}", start, json.dumps({"error": str(exc)}))
                    continue
                line = reader.line_num
                if not record:  # blank line
                    continue
                if len(record) != len(header):
                    fields = [printable(v, encoding) for v in record]
                    collector.bad(
                        "wrong_field_count",
                        f"expected {len(header)} fields ({', '.join(header)}), found {len(record)}",
                        start,
                        json.dumps({"fields": fields}, ensure_ascii=False),
                    )
                elif has_undecodable(record):
                    fields = [printable(v, encoding) for v in record]
                    collector.bad(
                        "undecodable",
                        f"bytes that are not valid {encoding}",
                        start,
                        json.dumps(dict(zip(header, fields, strict=True)), ensure_ascii=False),
                    )
                else:
                    collector.good([record[i] if record[i] != "" else None for i in index], start)
                if collector.count % 4096 == 0:
                    update(raw.tell())
                if chunk_rows is not None and collector.pending >= chunk_rows:
                    chunks += 1
                    yield collector.finish(has_lines=True)
            update(total)
    if collector.pending or not chunks:
        yield collector.finish(has_lines=True)


def newlines_at_most(path: Path, limit: int, block: int = 1 << 20) -> bool:
    """Whether the file holds at most ``limit`` newline bytes (read a block at a time, stopping past the limit):
    a cheap upper bound on its records, so a file that fits one chunk is read whole."""
    seen = 0
    with path.open("rb") as handle:
        while piece := handle.read(block):
            seen += piece.count(b"\n")
            if seen > limit:
                return False
    return True


def _header(reader: csv.Reader, name: str) -> list[str]:  # type: ignore[name-defined]
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise DataSourceError(f"{name} is empty; a header row is expected.") from None
    except csv.Error as exc:
        raise MalformedRecordError(f"header row: {exc}", location=f"{name}:1") from None
    _check_header(header, name)
    return header


def _ascii_compatible(encoding: str, delimiter: str) -> bool:
    """Newline, quote and delimiter are their ASCII bytes and never part of a multi-byte character (UTF-8, GBK,
    GB18030, Big5, Latin-1...; not UTF-16/32), so counting b"\n" in the raw bytes counts lines."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    if name.startswith(("utf-16", "utf-32")):
        return False
    name = "utf-8" if name == "utf-8-sig" else name  # its mark is written once, before the first byte
    return all(c.encode(name, "strict") == c.encode("ascii") for c in ("\n", '"', delimiter) if c.isascii())


def _read_columnar(path: Path, spec: CsvSource, encoding: str, header: list[str], chosen: list[str]) -> Dataset | None:
    """The whole file through pyarrow's parser, or ``None`` where the line path must read it.

    ``None`` when pyarrow refuses the file (a row with the wrong field count, bytes the encoding cannot decode,
    a quote left open) or when the row line numbers cannot be told from the bytes (blank lines, lone ``\r`` line
    ends): the line path then names each bad row. Row ``i`` starts on line ``2 + i`` plus the newlines inside the
    values of the rows before it.
    """
    if not spec.delimiter.isascii() or len(spec.delimiter) != 1 or not _ascii_compatible(encoding, spec.delimiter):
        return None
    raw = path.read_bytes()
    codec = codecs.lookup(encoding).name
    # pyarrow skips a UTF-8 byte-order mark itself (and the header line holding it is skipped anyway).
    codec = "utf8" if codec in ("utf-8", "utf-8-sig") else codec
    try:
        table = pacsv.read_csv(
            pa.BufferReader(raw),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, use_threads=False, encoding=codec),
            parse_options=pacsv.ParseOptions(
                delimiter=spec.delimiter,
                quote_char='"',
                double_quote=True,
                escape_char=False,
                newlines_in_values=True,
                ignore_empty_lines=True,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.large_string()),
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                check_utf8=True,
            ),
        )
    except (pa.ArrowInvalid, UnicodeError, ValueError):
        return None
    rows = table.num_rows
    if rows == 0 or raw.count(b"\r") > raw.count(b"\r\n"):
        return None  # a lone \r ends a line for the line path: let it number the rows
    physical = raw.count(b"\n") + (1 if raw and not raw.endswith(b"\n") else 0)
    inner = np.zeros(rows, dtype="int64")
    if physical != 1 + rows:  # values that hold newlines (or blank lines)
        for column in header:
            inner += pc.fill_null(pc.count_substring(table.column(column), "\n"), 0).to_numpy().astype("int64")
    if physical != 1 + rows + int(inner.sum()):
        return None  # blank lines: let the line path number the rows
    lines = 2 + np.arange(rows, dtype="int64") + np.cumsum(inner) - inner
    frame = pd.DataFrame({ROW_ID: np.arange(rows, dtype="int64")})
    for column in chosen:
        frame[column] = pd.array(table.column(column), dtype="string")
    return Dataset(
        frame=frame,
        source=str(spec.path),
        rows_read=rows,
        quarantine=quarantine_records([]),
        lines=pd.Series(lines, index=frame[ROW_ID].to_numpy(), dtype="int64"),
    )


def _text(raw: io.BufferedReader, encoding: str, name: str) -> io.TextIOWrapper:
    try:
        # surrogateescape: undecodable bytes become markers, so the bad row (not the whole read) is reported.
        return io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape", newline="")
    except LookupError:
        raise EncodingDetectionError(
            f"{name}: unknown encoding '{encoding}'.",
            hint="use a Python codec name such as utf-8, gbk, gb18030",
        ) from None


def _check_header(header: list[str], name: str) -> None:
    if any(h == "" for h in header):
        raise DataSourceError(
            f"{name}: the header row has an empty column name: {header}.",
            hint="give every column a name in the first row",
        )
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise DataSourceError(f"{name}: the header row repeats {duplicated}.", hint="make column names unique")
