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
from typing import Any

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
    """:func:`read_csv` a chunk of about ``chunk_rows`` records at a time (row ids, line numbers and quarantine as
    one read gives them); ``None``: the whole file as one chunk.

    A file of at most ``chunk_rows`` lines is read whole. A longer one is cut into blocks of ``chunk_rows``
    records at newlines outside quotes (an even number of ``"`` before them), each block parsed as the whole file
    would be: by pyarrow where it can, else line by line (its bad rows named by their lines). A file whose bytes
    cannot be cut so (an encoding that is not ASCII-compatible, a header over several lines) is read line by line
    from start to end, a chunk at a time. No more than a block is ever held.
    """
    path = existing_file(spec.path)
    encoding = spec.encoding or detect_encoding(path)
    name = str(spec.path)
    with path.open("rb") as raw, _text(raw, encoding, name) as text:
        reader = csv.reader(text, delimiter=spec.delimiter)
        header = _header(reader, name)
        chosen = select_columns(header, columns, source=name)
        cuttable = reader.line_num == 1 and _columnar_encoding(encoding, spec.delimiter) is not None
        if not cuttable or chunk_rows is None or newlines_at_most(path, chunk_rows):
            with progress_bar(f"reading {path.name}", path.stat().st_size, progress) as update:
                fast = None
                if cuttable:  # the whole file through pyarrow first, then (malformed rows...) the line path
                    fast = _read_columnar(path.read_bytes(), spec, encoding, header, chosen, first_line=2, first_id=0)
                if fast is not None:
                    yield fast
                else:
                    collector = _collector(spec, name, chosen, 0)
                    yield from _line_rows(reader, collector, header, chosen, encoding, name, 0, chunk_rows)
                update(path.stat().st_size)
            return
    line, row = 2, 0
    for block in _blocks(path, chunk_rows):
        chunk = _read_columnar(block, spec, encoding, header, chosen, first_line=line, first_id=row, in_file=False)
        if chunk is not None:
            used = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
        else:  # the block as the line path reads it, its lines numbered from where the block starts
            with _text(io.BytesIO(block), encoding, name) as part:  # type: ignore[arg-type]
                block_reader = csv.reader(part, delimiter=spec.delimiter)
                collector = _collector(spec, name, chosen, row)
                chunk = next(_line_rows(block_reader, collector, header, chosen, encoding, name, line - 1, None))
                used = block_reader.line_num
        yield chunk
        line, row = line + used, row + chunk.rows_read


def _collector(spec: CsvSource, name: str, chosen: list[str], start: int) -> RowCollector:
    hint = f"fix the row (fields are separated by {spec.delimiter!r}; quote fields that contain it)"
    return RowCollector(name, chosen, spec.on_error, fix_hint=hint, start=start)


def _line_rows(
    reader: Any,
    collector: RowCollector,
    header: list[str],
    chosen: list[str],
    encoding: str,
    name: str,
    offset: int,
    chunk_rows: int | None,
) -> Iterator[Dataset]:
    """The records of ``reader`` (the csv module's, after the header), a chunk of ``chunk_rows`` at a time
    (``None``: one chunk); ``offset``: the lines before the reader's first."""
    index = [header.index(c) for c in chosen]
    line = offset + reader.line_num
    chunks = 0
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
            line = offset + reader.line_num
            collector.bad("csv_syntax", f"unreadable CSV: {exc}", start, json.dumps({"error": str(exc)}))
            continue
        line = offset + reader.line_num
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
        if chunk_rows is not None and collector.pending >= chunk_rows:
            chunks += 1
            yield collector.finish(has_lines=True)
    if collector.pending or not chunks:
        yield collector.finish(has_lines=True)


def _blocks(path: Path, records: int) -> Iterator[bytes]:
    """The file after its header line in blocks of ``records`` newlines outside quotes (the last block: what is
    left). A newline with an even number of ``"`` before it ends a record in RFC 4180 CSV (``""`` inside a quoted
    value adds two); the parity is carried from piece to piece. Pieces grow with the block (64 bytes a record, at
    least 64 KiB), so the bytes held stay near one block's."""
    piece = max(1 << 16, 64 * records)
    with path.open("rb") as handle:
        handle.readline()  # the header (one line: checked by the caller)
        buffer, scanned, parity, cuts = b"", 0, 0, np.empty(0, dtype="int64")
        while True:
            more = handle.read(piece)
            if more:
                buffer += more
                new = np.frombuffer(buffer, dtype=np.uint8, offset=scanned)
                quotes, newlines = np.flatnonzero(new == 34), np.flatnonzero(new == 10)
                even = (np.searchsorted(quotes, newlines) + parity) % 2 == 0  # quotes before each newline
                cuts = np.concatenate([cuts, newlines[even] + scanned + 1])
                parity = (parity + len(quotes)) % 2
                scanned = len(buffer)
            while len(cuts) >= records:
                cut = int(cuts[records - 1])
                yield buffer[:cut]
                buffer, scanned, cuts = buffer[cut:], scanned - cut, cuts[records:] - cut
            if not more:
                if buffer:
                    yield buffer
                return


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


def _columnar_encoding(encoding: str, delimiter: str) -> str | None:
    """pyarrow's name for ``encoding`` when pyarrow can parse the file and its bytes can be cut at newlines, else
    ``None``."""
    if not delimiter.isascii() or len(delimiter) != 1 or not _ascii_compatible(encoding, delimiter):
        return None
    codec = codecs.lookup(encoding).name
    # pyarrow skips a UTF-8 byte-order mark itself (and the header line holding it is skipped anyway).
    return "utf8" if codec in ("utf-8", "utf-8-sig") else codec


def _read_columnar(
    raw: bytes,
    spec: CsvSource,
    encoding: str,
    header: list[str],
    chosen: list[str],
    *,
    first_line: int,
    first_id: int,
    in_file: bool = True,
) -> Dataset | None:
    """Records through pyarrow's parser, or ``None`` where the line path must read them. ``raw``: the whole file
    (``in_file``: its header line is skipped) or a block of whole records after the header (its first line
    ``first_line``, its first row id ``first_id``).

    ``None`` when pyarrow refuses the bytes (a row with the wrong field count, bytes the encoding cannot decode,
    a quote left open) or when the row line numbers cannot be told from the bytes (blank lines, lone ``\r``
    line ends): the line path then names each bad row. Row ``i`` starts on line ``first_line + i`` plus the
    newlines inside the values of the rows before it.
    """
    codec = _columnar_encoding(encoding, spec.delimiter)
    if codec is None:
        return None
    skip = int(in_file)
    try:
        table = pacsv.read_csv(
            pa.BufferReader(raw),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=skip, use_threads=False, encoding=codec),
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
    if physical != skip + rows:  # values that hold newlines (or blank lines)
        for column in header:
            inner += pc.fill_null(pc.count_substring(table.column(column), "\n"), 0).to_numpy().astype("int64")
    if physical != skip + rows + int(inner.sum()):
        return None  # blank lines: let the line path number the rows
    lines = first_line + np.arange(rows, dtype="int64") + np.cumsum(inner) - inner
    ids = first_id + np.arange(rows, dtype="int64")
    frame = pd.DataFrame({ROW_ID: ids})
    for column in chosen:
        frame[column] = pd.array(table.column(column), dtype="string")
    return Dataset(
        frame=frame,
        source=str(spec.path),
        rows_read=rows,
        quarantine=quarantine_records([]),
        lines=pd.Series(lines, index=ids, dtype="int64"),
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
