"""Text cleaning: pure functions, one registered rule each, applied to chosen text columns.

Rules run in the configured order and the whole pass repeats until nothing changes (at most a few passes),
so cleaning is idempotent: ``clean_text(clean_text(x)) == clean_text(x)``. No rule lengthens text, so cleaning
never grows it. Compatibility characters whose NFKC form is several characters (``…``, ``㎏``, ``½``) are kept
as they are for that reason.

Rows whose text is empty after cleaning, and rows whose text repeats an earlier row's, leave the frame with a
reason (see :func:`clean_frame`); they are never dropped silently.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from openautoglm.core.data.clean_batch import clean_texts, is_removed_control, nfkc_code_point
from openautoglm.core.data.schema import ROW_ID, QuarantinedRow, quarantine_records
from openautoglm.core.errors import MissingColumnsError
from openautoglm.core.registry import Registry

TextRule = Callable[[str], str]

#: Cleaning rules by name. Each maps a text to a text that is not longer.
CLEAN_RULES: Registry[TextRule] = Registry("clean rule")

_TAG = re.compile(r"<(?:[A-Za-z][^<>]*|/[A-Za-z][^<>]*|![^<>]*|\?[^<>]*)>")
_MAX_PASSES = 6


@CLEAN_RULES.register("html")
def strip_html(text: str) -> str:
    """Decode HTML entities (repeatedly, for double-escaped text) and replace tags with a space.

    Only things that look like tags (``<p>``, ``</div>``, ``<!-- -->``, ``<br/>``) are removed; ``a < b > c``
    stays.
    """
    for _ in range(_MAX_PASSES):
        decoded = html.unescape(text) if "&" in text else text
        stripped = _TAG.sub(" ", decoded) if "<" in decoded else decoded
        if stripped == text:
            break
        text = stripped
    return text


class _NfkcTable(dict[int, int]):
    """A ``str.translate`` table filled on first sight of each code point: its NFKC form when that is one
    character, else the code point itself (so the text never grows). Translation then runs in C."""

    def __missing__(self, cp: int) -> int:
        self[cp] = nfkc_code_point(cp)
        return self[cp]


_NFKC = _NfkcTable()


@CLEAN_RULES.register("nfkc")
def nfkc(text: str) -> str:
    """Unicode NFKC, character by character, keeping characters whose NFKC form has several characters.

    This maps full-width ASCII to half-width (``ＡＢＣ１２３`` -> ``ABC123``, ``，`` -> ``,``), the ideographic space
    to a space and half-width katakana to full-width, while never lengthening the text.
    """
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text
    return text.translate(_NFKC)


_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_HAS_FULLWIDTH = re.compile("[\uff01-\uff5e\u3000]")


@CLEAN_RULES.register("fullwidth")
def fullwidth_to_halfwidth(text: str) -> str:
    """Map full-width ASCII variants (U+FF01-U+FF5E) and the ideographic space to their ASCII forms.

    NFKC already does this; the rule exists for pipelines that switch NFKC off.
    """
    return text.translate(_FULLWIDTH) if _HAS_FULLWIDTH.search(text) else text


@lru_cache(maxsize=65536)
def _is_control(ch: str) -> bool:
    return is_removed_control(ord(ch))


@CLEAN_RULES.register("control")
def remove_control(text: str) -> str:
    """Remove control (Cc, except whitespace), format (Cf: zero-width spaces, BOMs) and surrogate characters."""
    if text.isprintable():
        return text
    return "".join(ch for ch in text if not _is_control(ch))


@CLEAN_RULES.register("whitespace")
def collapse_whitespace(text: str) -> str:
    """Collapse every run of whitespace to one space and strip both ends."""
    return " ".join(text.split())


class CleanConfig(BaseModel):
    """What to clean and how.

    Attributes:
        text_columns: Columns holding text to clean (for matching: both sentences).
        rules: Rule names from :data:`CLEAN_RULES`, applied in this order.
        max_length: Optional cap in characters; longer texts are cut (counted as ``truncated``).
        drop_empty: Quarantine rows whose text is missing or empty after cleaning.
        drop_duplicates: Quarantine rows whose cleaned texts repeat an earlier row's (the first is kept).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    text_columns: tuple[str, ...] = ("text",)
    rules: tuple[str, ...] = ("html", "nfkc", "fullwidth", "control", "whitespace")
    max_length: int | None = Field(default=None, ge=1)
    drop_empty: bool = True
    drop_duplicates: bool = True

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, rules: tuple[str, ...]) -> tuple[str, ...]:
        for name in rules:
            CLEAN_RULES.resolve(name)
        return rules

    @field_validator("text_columns")
    @classmethod
    def _some_columns(cls, columns: tuple[str, ...]) -> tuple[str, ...]:
        if not columns:
            raise ValueError("text_columns must name at least one column")
        return columns


class CleanReport(BaseModel):
    """Counts of what cleaning did.

    Attributes:
        rows_in: Rows given to cleaning.
        rows_out: Rows kept.
        changed: Per rule, how many texts it changed.
        truncated: Texts cut to ``max_length``.
        dropped_empty: Rows quarantined because a text was missing or empty.
        dropped_duplicate: Rows quarantined as duplicates of an earlier row.
    """

    rows_in: int = 0
    rows_out: int = 0
    changed: dict[str, int] = Field(default_factory=dict)
    truncated: int = 0
    dropped_empty: int = 0
    dropped_duplicate: int = 0

    def merge(self, other: CleanReport) -> CleanReport:
        """Sum two reports (for chunks cleaned in parallel)."""
        changed = Counter(self.changed)
        changed.update(other.changed)
        return CleanReport(
            rows_in=self.rows_in + other.rows_in,
            rows_out=self.rows_out + other.rows_out,
            changed=dict(changed),
            truncated=self.truncated + other.truncated,
            dropped_empty=self.dropped_empty + other.dropped_empty,
            dropped_duplicate=self.dropped_duplicate + other.dropped_duplicate,
        )


def _rules(config: CleanConfig) -> list[tuple[str, TextRule]]:
    return [(name, CLEAN_RULES.resolve(name)) for name in config.rules]


def clean_text_traced(
    text: str, config: CleanConfig, rules: list[tuple[str, TextRule]] | None = None
) -> tuple[str, set[str]]:
    """Clean one text; also return the names of the rules that changed it (``truncated`` for the cap).

    ``rules`` are the config's resolved rules, for callers cleaning many texts (resolved here when omitted).
    """
    rules = rules if rules is not None else _rules(config)
    fired: set[str] = set()
    for _ in range(_MAX_PASSES):
        before = text
        for name, rule in rules:
            out = rule(text)
            if out != text:
                fired.add(name)
                text = out
        if config.max_length is not None and len(text) > config.max_length:
            # rstrip: a cut must not leave a trailing space that the next pass would remove.
            text = text[: config.max_length].rstrip()
            fired.add("truncated")
        if text == before:
            break
    return text, fired


def clean_text(text: str, config: CleanConfig | None = None) -> str:
    """Clean one text with ``config`` (default rules when omitted)."""
    return clean_text_traced(text, config or CleanConfig())[0]


def normalize_frame(frame: pd.DataFrame, config: CleanConfig) -> tuple[pd.DataFrame, CleanReport]:
    """Apply the text rules to the configured columns of one chunk. Row-local, so chunks may run in parallel.

    Missing values stay missing; :func:`drop_empty_and_duplicates` deals with them.
    """
    _check_columns(frame, config.text_columns)
    out = frame.copy(deep=False)  # the text columns are replaced, not written into (and pandas copies on write)
    counts: Counter[str] = Counter()
    rules = _rules(config)
    for column in config.text_columns:
        # Each distinct text is cleaned once (repeated reviews, labels, templates are common); counts stay per row.
        # The column as a dictionary (distinct texts + one index per row, missing values as missing indices).
        column_values = pa.array(out[column].astype("string"), type=pa.large_string())
        if isinstance(column_values, pa.ChunkedArray):
            column_values = column_values.combine_chunks()
        encoded = pc.dictionary_encode(column_values)
        texts, fired = clean_texts(
            encoded.dictionary.to_pylist(),
            [name for name, _ in rules],
            max_length=config.max_length,
            passes=_MAX_PASSES,
            one=lambda text: clean_text_traced(text, config, rules),
        )
        rows_per_text = np.bincount(pc.drop_null(encoded.indices).to_numpy(), minlength=len(texts))
        for name, flags in fired.items():
            if flags.any():
                counts[name] += int(rows_per_text[flags].sum())
        cleaned = pa.array(texts, type=pa.large_string()).take(encoded.indices)
        out[column] = pd.array(cleaned, dtype="string")
    truncated = counts.pop("truncated", 0)
    report = CleanReport(rows_in=len(frame), rows_out=len(frame), changed=dict(counts), truncated=truncated)
    return out, report


def drop_empty_and_duplicates(
    frame: pd.DataFrame, config: CleanConfig
) -> tuple[pd.DataFrame, pd.DataFrame, CleanReport]:
    """Quarantine rows with empty or missing text, then rows repeating an earlier row's texts.

    Must see the whole dataset (duplicates cross chunk borders). Returns the kept rows, the rejected rows as a
    quarantine table (``location``/``record`` left for the dataset to fill), and the counts.
    """
    _check_columns(frame, config.text_columns)
    columns = list(config.text_columns)
    rejected: list[QuarantinedRow] = []
    keep = pd.Series(True, index=frame.index)
    row_ids = frame[ROW_ID].to_numpy()
    dropped_empty = dropped_dup = 0
    if config.drop_empty:
        texts = frame[columns]
        missing = texts.isna()
        empty_cells = missing | texts.fillna("").eq("")
        empty = empty_cells.any(axis=1)
        for position in np.flatnonzero(empty.to_numpy()).tolist():
            which = [c for c, is_empty in zip(columns, empty_cells.iloc[position].tolist(), strict=True) if is_empty]
            rejected.append(
                _reject(int(row_ids[position]), "empty_text", f"{', '.join(which)} missing or empty after cleaning")
            )
        keep &= ~empty
        dropped_empty = int(empty.sum())
    if config.drop_duplicates:
        kept = frame[keep] if not bool(keep.all()) else frame
        dup = kept.duplicated(subset=columns, keep="first")
        if dup.any():
            # The row id of each group's first row, for every row (rows are in row-id order within a group).
            first = kept.groupby(columns, sort=False, dropna=False)[ROW_ID].transform("first")
            for rid, first_id in zip(kept[ROW_ID][dup].tolist(), first[dup].tolist(), strict=True):
                rejected.append(_reject(int(rid), "duplicate", f"same {', '.join(columns)} as row {int(first_id)}"))
            keep.loc[kept.index[dup]] = False
            dropped_dup = int(dup.sum())
    report = CleanReport(
        rows_in=len(frame),
        rows_out=int(keep.sum()),
        dropped_empty=dropped_empty,
        dropped_duplicate=dropped_dup,
    )
    return frame[keep].reset_index(drop=True), quarantine_records(rejected), report


def clean_frame(frame: pd.DataFrame, config: CleanConfig) -> tuple[pd.DataFrame, pd.DataFrame, CleanReport]:
    """Normalise the text columns, then quarantine empty and duplicate rows (see the two steps)."""
    normalised, report = normalize_frame(frame, config)
    kept, rejected, drop_report = drop_empty_and_duplicates(normalised, config)
    return kept, rejected, merge_reports([report, drop_report], rows_in=len(frame))


def merge_reports(reports: Iterable[CleanReport], *, rows_in: int) -> CleanReport:
    """Combine chunk normalisation reports and the final drop report into one for the dataset."""
    total = CleanReport()
    for report in reports:
        total = total.merge(report)
    rows_out = rows_in - total.dropped_empty - total.dropped_duplicate
    return total.model_copy(update={"rows_in": rows_in, "rows_out": rows_out})


def _reject(row_id: int, rule: str, reason: str) -> QuarantinedRow:
    return QuarantinedRow(row_id=row_id, stage="clean", rule=rule, reason=reason, location="", record="")


def _check_columns(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        available = [c for c in frame.columns if c != ROW_ID]
        raise MissingColumnsError(
            f"Text column(s) {missing} not in the data; columns are {available}.",
            hint="set text_columns (CLI: --text-column) to the column that holds the text, or rename it",
        )
