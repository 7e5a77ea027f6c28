"""Text-encoding detection for CSV and JSONL files.

Order: a byte-order mark decides; else UTF-8 (also when only a few bytes are corrupt); else GB18030 (a
superset of GBK and GB2312) when the decoded sample is mostly Chinese; else charset-normalizer's best guess.
Only the first megabyte is read.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from charset_normalizer import from_bytes

from openautoglm.core.errors import EncodingDetectionError

SAMPLE_BYTES = 1 << 20

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decodes(sample: bytes, encoding: str, complete: bool) -> str | None:
    try:
        return sample.decode(encoding)
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sample's end is not an error.
        if not complete and exc.start >= len(sample) - 4:
            try:
                return sample[: exc.start].decode(encoding)
            except UnicodeDecodeError:
                return None
        return None


def _mostly_utf8(sample: bytes) -> bool:
    """UTF-8 with a few corrupt bytes: keep UTF-8 (the bad rows are reported) rather than misread the whole file
    as GB18030. Text in another encoding decoded as UTF-8 gives mostly replacement characters instead."""
    text = sample.decode("utf-8", errors="replace")
    non_ascii = sum(1 for ch in text if ord(ch) > 127)
    bad = text.count("\ufffd")
    return non_ascii - bad >= 10 and bad <= 0.05 * non_ascii


def _mostly_cjk(text: str) -> bool:
    non_ascii = [ch for ch in text if ord(ch) > 127]
    if not non_ascii:
        return True
    cjk = sum(1 for ch in non_ascii if "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef")
    return cjk / len(non_ascii) >= 0.6


def detect_encoding(path: Path) -> str:
    """Return a Python codec name that decodes the start of ``path``.

    Raises:
        EncodingDetectionError: when no candidate fits; the hint says how to name the encoding.
    """
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
        complete = len(sample) < SAMPLE_BYTES or not handle.read(1)
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    if _decodes(sample, "utf-8", complete) is not None or _mostly_utf8(sample):
        return "utf-8"
    gb = _decodes(sample, "gb18030", complete)
    if gb is not None and _mostly_cjk(gb):
        return "gb18030"
    best = from_bytes(sample).best()
    if best is not None:
        return str(best.encoding)
    raise EncodingDetectionError(
        f"{path}: could not tell the text encoding from the first {len(sample):,} bytes.",
        hint="name it: encoding='gbk' (CLI: --encoding gbk); common ones are utf-8, utf-8-sig, gbk, gb18030, big5",
    )
