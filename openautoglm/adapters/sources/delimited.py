"""CSV (and other delimited) files, streamed with the standard csv module so every bad row has a line number."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence

from pydantic import SecretStr

from openautoglm.adapters.progress import progress_bar
from openautoglm.adapters.sources.base import SOURCES, RowCollector, existing_file, has_undecodable, printable
from openautoglm.adapters.sources.encoding import detect_encoding
from openautoglm.adapters.sources.specs import CsvSource
from openautoglm.core.data.schema import Dataset
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
    path = existing_file(spec.path)
    encoding = spec.encoding or detect_encoding(path)
    total = path.stat().st_size
    name = str(spec.path)
    with path.open("rb") as raw, _text(raw, encoding, name) as text:
        reader = csv.reader(text, delimiter=spec.delimiter)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataSourceError(f"{name} is empty; a header row is expected.") from None
        except csv.Error as exc:
            raise MalformedRecordError(f"header row: {exc}", location=f"{name}:1") from None
        _check_header(header, name)
        chosen = select_columns(header, columns, source=name)
        index = [header.index(c) for c in chosen]
        collector = RowCollector(
            name,
            chosen,
            spec.on_error,
            fix_hint=f"fix the row (fields are separated by {spec.delimiter!r}; quote fields that contain it)",
        )
        line = 1
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
            update(total)
    return collector.finish(has_lines=True)


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
