"""JSON Lines files: one JSON object per line; keys become columns."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydantic import SecretStr

from openautoglm.adapters.progress import progress_bar
from openautoglm.adapters.sources.base import (
    CHUNKED_SOURCES,
    SOURCES,
    RowCollector,
    existing_file,
    has_undecodable,
    printable,
)
from openautoglm.adapters.sources.delimited import newlines_at_most
from openautoglm.adapters.sources.encoding import detect_encoding
from openautoglm.adapters.sources.specs import JsonlSource
from openautoglm.core.data.schema import Dataset
from openautoglm.core.data.values import select_columns, to_text
from openautoglm.core.errors import EncodingDetectionError


@SOURCES.register("jsonl", "ndjson")
def read_jsonl(
    spec: JsonlSource,
    *,
    columns: Sequence[str] | None = None,
    progress: bool | None = None,
    password: SecretStr | None = None,
) -> Dataset:
    """Read JSON Lines. A key absent from a record loads as a missing value; blank lines are skipped.

    With ``columns=None`` the columns are every key seen, in order of first appearance. A line that is not
    JSON, or is JSON but not an object, is malformed.
    """
    path = existing_file(spec.path)
    encoding = spec.encoding or detect_encoding(path)
    name = str(spec.path)
    parsed: list[tuple[int, Parsed]] = []
    keys: dict[str, None] = {}
    for number, item in _lines(path, encoding, name, progress):
        if isinstance(item, dict):
            keys.update(dict.fromkeys(item))
        parsed.append((number, item))
    chosen = select_columns(list(keys), columns, source=name)
    collector = RowCollector(name, chosen, spec.on_error, fix_hint=FIX_HINT)
    for number, item in parsed:
        _collect(collector, chosen, number, item)
    return collector.finish(has_lines=True)


@CHUNKED_SOURCES.register("jsonl", "ndjson")
def iter_jsonl(
    spec: JsonlSource,
    *,
    columns: Sequence[str] | None = None,
    progress: bool | None = None,
    password: SecretStr | None = None,
    chunk_rows: int | None = None,
) -> Iterator[Dataset]:
    """:func:`read_jsonl` ``chunk_rows`` records at a time. A file of at most ``chunk_rows`` lines is read whole;
    a longer one twice when ``columns`` is not given (first for the keys, which make the columns of every
    chunk), then a chunk at a time."""
    path = existing_file(spec.path)
    if chunk_rows is None or newlines_at_most(path, chunk_rows):
        yield read_jsonl(spec, columns=columns, progress=progress, password=password)
        return
    encoding = spec.encoding or detect_encoding(path)
    name = str(spec.path)
    if columns is None:
        keys: dict[str, None] = {}
        for _, item in _lines(path, encoding, name, progress):
            if isinstance(item, dict):
                keys.update(dict.fromkeys(item))
        columns = list(keys)
    chosen = select_columns(list(columns), columns, source=name)
    collector = RowCollector(name, chosen, spec.on_error, fix_hint=FIX_HINT)
    chunks = 0
    for number, item in _lines(path, encoding, name, progress):
        _collect(collector, chosen, number, item)
        if collector.pending >= chunk_rows:
            chunks += 1
            yield collector.finish(has_lines=True)
    if collector.pending or not chunks:
        yield collector.finish(has_lines=True)


FIX_HINT = "make each line one JSON object"
#: A parsed line: the object, or a bad line's (rule, reason, the line as shown).
Parsed = dict[str, object] | tuple[str, str, str]


def _lines(path: Path, encoding: str, name: str, progress: bool | None) -> Iterator[tuple[int, Parsed]]:
    """Each non-blank line's number and what it holds, in file order."""
    total = path.stat().st_size
    try:
        text = io.TextIOWrapper(path.open("rb"), encoding=encoding, errors="surrogateescape")
    except LookupError:
        raise EncodingDetectionError(f"{name}: unknown encoding '{encoding}'.") from None
    with text, progress_bar(f"reading {path.name}", total, progress) as update:
        for number, line in enumerate(text, start=1):
            if not line.strip():
                continue
            yield number, _parse(line, encoding)
            if number % 4096 == 0:
                update(text.buffer.tell())
        update(total)


def _parse(line: str, encoding: str) -> Parsed:
    shown = printable(line.rstrip("\r\n"), encoding)
    if has_undecodable([line]):
        return ("undecodable", f"bytes that are not valid {encoding}", shown)
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return ("invalid_json", f"not JSON: {exc.msg} at column {exc.colno}", shown)
    if not isinstance(value, dict):
        return ("not_an_object", f"a JSON {type(value).__name__}, expected an object {{...}}", shown)
    return value


def _collect(collector: RowCollector, chosen: Sequence[str], number: int, item: Parsed) -> None:
    if isinstance(item, dict):
        collector.good([to_text(item.get(c)) for c in chosen], number)
    else:
        rule, reason, shown = item
        collector.bad(rule, reason, number, json.dumps({"line": shown}, ensure_ascii=False))
