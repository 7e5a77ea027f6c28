"""An uploaded data file (the canvas's Upload): its name made safe and its content checked, before anything is written.

Pure: the caller writes the bytes (under a data root's ``uploads/`` folder) once these checks pass. A name is
reduced to one plain file name — no folder, no leading dot, only letters, digits, ``.``, ``-`` and ``_`` (other
characters become ``-``), at most :data:`MAX_NAME` characters, ending in ``.csv`` or ``.jsonl`` — so that
``root / name`` is always a file directly inside ``root``. The content must be UTF-8 text: a CSV with a header
row, or JSON Lines where every non-blank line is a JSON object.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass

from openautoglm.core.errors import ConfigurationError

#: The kinds of file the canvas's load stage reads from an upload, by suffix.
SUFFIXES = (".csv", ".jsonl")
MAX_NAME = 100
_UNSAFE = re.compile(r"[^\w.-]+")


@dataclass(frozen=True)
class UploadSummary:
    """What an upload holds: rows (data rows, the header left out) and the columns (CSV header, JSONL keys)."""

    rows: int
    columns: tuple[str, ...]


def safe_upload_name(name: str) -> str:
    """``name`` as a plain file name (see the module docstring), or :class:`ConfigurationError` saying why not.

    Idempotent: a safe name is returned unchanged.
    """
    base = unicodedata.normalize("NFKC", name).replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("-", base).lstrip(".-_")
    cleaned = re.sub(r"-{2,}", "-", cleaned)
    stem, dot, suffix = cleaned.rpartition(".")
    if not dot or f".{suffix.lower()}" not in SUFFIXES or not stem.strip(".-_"):
        raise ConfigurationError(
            f"'{name[:80]}' is not a CSV or JSONL file name.", hint="name the file like reviews.csv or items.jsonl"
        )
    cleaned = f"{stem[: MAX_NAME - len(suffix) - 1].rstrip('.')}.{suffix.lower()}"
    return cleaned


def inspect_upload(name: str, data: bytes) -> UploadSummary:
    """The rows and columns of an upload named ``name`` (already safe), or :class:`ConfigurationError`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigurationError(
            f"{name}: not UTF-8 text.", hint="save the file as UTF-8 (Excel: CSV UTF-8) and upload it again"
        ) from None
    if not text.strip():
        raise ConfigurationError(f"{name}: the file is empty.", hint="upload a file with a header row and rows")
    if name.endswith(".jsonl"):
        return _jsonl(name, text)
    return _csv(name, text)


def _csv(name: str, text: str) -> UploadSummary:
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as error:
        raise ConfigurationError(f"{name}: not a CSV file ({error}).", hint="check the file's quotes") from None
    header = [c.strip() for c in rows[0]] if rows else []
    if not header or any(not c for c in header) or len(set(header)) != len(header):
        raise ConfigurationError(
            f"{name}: the first row must name every column once (it is {header[:10]}).",
            hint="add a header row such as text,label",
        )
    return UploadSummary(rows=sum(1 for r in rows[1:] if any(cell.strip() for cell in r)), columns=tuple(header))


def _jsonl(name: str, text: str) -> UploadSummary:
    columns: dict[str, None] = {}
    rows = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise ConfigurationError(
                f"{name}:{number}: not a JSON object.", hint="JSON Lines: one {...} object per line"
            )
        columns.update(dict.fromkeys(str(k) for k in record))
        rows += 1
    return UploadSummary(rows=rows, columns=tuple(columns))
