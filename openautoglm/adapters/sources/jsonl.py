"""JSON Lines files: one JSON object per line; keys become columns."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

from pydantic import SecretStr

from openautoglm.adapters.progress import progress_bar
from openautoglm.adapters.sources.base import SOURCES, RowCollector, existing_file, has_undecodable, printable
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
    records: list[tuple[int, dict[str, object]]] = []
    keys: dict[str, None] = {}
    collector_bad: list[tuple[int, str, str, str]] = []
    order: list[tuple[str, int]] = []  # ("good"|"bad", index) in file order, so row ids follow the file
    total = path.stat().st_size
    try:
        text = io.TextIOWrapper(path.open("rb"), encoding=encoding, errors="surrogateescape")
    except LookupError:
        raise EncodingDetectionError(f"{name}: unknown encoding '{encoding}'.") from None
    with text, progress_bar(f"reading {path.name}", total, progress) as update:
        for number, line in enumerate(text, start=1):
            if not line.strip():
                continue
            shown = printable(line.rstrip("\r\n"), encoding)
            if has_undecodable([line]):
                collector_bad.append((number, "undecodable", f"bytes that are not valid {encoding}", shown))
                order.append(("bad", len(collector_bad) - 1))
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                collector_bad.append((number, "invalid_json", f"not JSON: {exc.msg} at column {exc.colno}", shown))
                order.append(("bad", len(collector_bad) - 1))
                continue
            if not isinstance(value, dict):
                kind = type(value).__name__
                collector_bad.append((number, "not_an_object", f"a JSON {kind}, expected an object {{...}}", shown))
                order.append(("bad", len(collector_bad) - 1))
                continue
            for key in value:
                keys.setdefault(key, None)
            records.append((number, value))
            order.append(("good", len(records) - 1))
            if number % 4096 == 0:
                update(text.buffer.tell())
        update(total)
    chosen = select_columns(list(keys), columns, source=name)
    collector = RowCollector(name, chosen, spec.on_error, fix_hint="make each line one JSON object")
    for kind, i in order:
        if kind == "good":
            number, value = records[i]
            collector.good([to_text(value.get(c)) for c in chosen], number)
        else:
            number, rule, reason, shown = collector_bad[i]
            collector.bad(rule, reason, number, json.dumps({"line": shown}, ensure_ascii=False))
    return collector.finish(has_lines=True)
