"""The cleaning rules over many texts at once, on arrays of code points (numpy), with the per-text rules' results.

:func:`clean_texts` gives exactly what ``clean_text_traced`` gives text by text; the per-text loop
costs ~10 µs a text in Python calls, the arrays ~1 µs. The character rules (``nfkc``, ``fullwidth``, ``control``,
``whitespace``) run on one array of all the texts' code points with a text id per code point:

- ``nfkc``/``fullwidth`` map code points through a lookup table (the per-text rules map character by character
  too; ``nfkc``'s table is filled on first sight of a code point, as its dict is);
- ``control`` drops code points by a table of the categories it removes;
- ``whitespace`` keeps the first character of each run of whitespace that has a non-space before and after it in
  the same text, as a space (``" ".join(text.split())``).

Texts the arrays cannot treat exactly go through the per-text rules: any text when a rule other than these and
``html`` is configured, and texts that ``html`` could change (holding ``&``, ``<`` or a character that ``nfkc`` or
``fullwidth`` maps to one of them) or that ``max_length`` could cut. Passes repeat until no text changes, at most
as many times as the per-text loop allows (a text that stopped changing is not changed by another pass); one pass
when whitespace is the last rule (see :func:`clean_texts`).

The per-text rules (:mod:`openautoglm.core.data.clean`) use this module's code-point maps, so both share one
definition of what ``nfkc`` and ``control`` do to a character.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

_UNICODE = 0x110000
_SPACE = 0x20

Codes = npt.NDArray[np.uint32]
Ids = npt.NDArray[np.int32]
Flags = npt.NDArray[np.bool_]
ArrayRule = Callable[[Codes, Ids, int], tuple[Codes, Ids, Flags]]
Traced = tuple[str, set[str]]


class _LazyTable:
    """A code point -> value table over all of Unicode, each entry computed by ``compute`` on first sight
    (unknown entries hold a sentinel, so one gather both looks up and tells whether anything was unknown)."""

    def __init__(self, compute: Callable[[int], int], dtype: type[np.unsignedinteger[Any]]) -> None:
        self._compute = compute
        self._unknown = np.iinfo(dtype).max
        self._values = np.full(_UNICODE, self._unknown, dtype=dtype)

    def lookup(self, codes: Codes) -> npt.NDArray[np.unsignedinteger[Any]]:
        out = self._values[codes]
        missing = out == self._unknown
        if missing.any():
            for cp in np.unique(codes[missing]).tolist():
                self._values[cp] = self._compute(cp)
            out = self._values[codes]
        return out


def nfkc_code_point(cp: int) -> int:
    """The ``nfkc`` rule's map of one code point: its NFKC form when that is one character, else itself."""
    out = unicodedata.normalize("NFKC", chr(cp))
    return ord(out) if len(out) == 1 else cp


def is_removed_control(cp: int) -> bool:
    """What the ``control`` rule removes: control (Cc, but whitespace), format (Cf) and surrogate characters."""
    category = unicodedata.category(chr(cp))
    return (category == "Cc" and chr(cp) not in "\t\n\r\f\v") or category in ("Cf", "Cs")


_NFKC = _LazyTable(nfkc_code_point, np.uint32)  # no code point is 0xFFFFFFFF, the sentinel
_CONTROL = _LazyTable(lambda cp: int(is_removed_control(cp)), np.uint8)
# str.isspace over U+0000-U+3000 (nothing above U+3000 is whitespace) and one False for everything above.
_WHITESPACE = np.array([chr(cp).isspace() for cp in range(0x3001)] + [False], dtype=bool)
_ABOVE_SPACES = len(_WHITESPACE) - 1


def _is_space(codes: Codes) -> Flags:
    out: Flags = _WHITESPACE[np.minimum(codes, _ABOVE_SPACES)]
    return out


def _flag(tid: Ids, where: Flags, n: int) -> Flags:
    flags = np.zeros(n, dtype=bool)
    flags[tid[where]] = True
    return flags


def _map(codes: Codes, tid: Ids, n: int, mapped: Codes) -> tuple[Codes, Ids, Flags]:
    return mapped, tid, _flag(tid, mapped != codes, n)


def _nfkc(codes: Codes, tid: Ids, n: int) -> tuple[Codes, Ids, Flags]:
    return _map(codes, tid, n, _NFKC.lookup(codes))


def _fullwidth(codes: Codes, tid: Ids, n: int) -> tuple[Codes, Ids, Flags]:
    mapped = codes.copy()
    wide = (codes >= 0xFF01) & (codes <= 0xFF5E)
    mapped[wide] -= 0xFEE0
    mapped[codes == 0x3000] = _SPACE
    return _map(codes, tid, n, mapped)


def _control(codes: Codes, tid: Ids, n: int) -> tuple[Codes, Ids, Flags]:
    removed = _CONTROL.lookup(codes).astype(bool)
    return codes[~removed], tid[~removed], _flag(tid, removed, n)


def _whitespace(codes: Codes, tid: Ids, n: int) -> tuple[Codes, Ids, Flags]:
    space = _is_space(codes)
    if not space.any():
        return codes, tid, np.zeros(n, dtype=bool)
    size = len(codes)
    same_as_previous = np.zeros(size, dtype=bool)
    same_as_previous[1:] = tid[1:] == tid[:-1]
    continues = np.zeros(size, dtype=bool)  # a space whose next character is a space of the same text
    continues[:-1] = space[:-1] & space[1:] & same_as_previous[1:]
    follows = np.zeros(size, dtype=bool)
    follows[1:] = continues[:-1]
    starts = np.flatnonzero(space & ~follows)  # each run of whitespace: its first and its last character
    ends = np.flatnonzero(space & ~continues)
    leading = ~same_as_previous[starts]
    trailing = np.ones(len(ends), dtype=bool)
    inside = ends + 1 < size
    trailing[inside] = ~same_as_previous[ends[inside] + 1]
    kept = starts[~leading & ~trailing]  # a run between two non-spaces of a text: its first character, as a space
    keep = ~space
    keep[kept] = True
    removed = np.flatnonzero(~keep)
    respaced = kept[codes[kept] != _SPACE]
    flags = np.zeros(n, dtype=bool)
    flags[tid[removed]] = True
    flags[tid[respaced]] = True
    codes[respaced] = _SPACE  # in place: the arrays are clean_texts' own, and the rules hand them on
    if len(removed):
        codes, tid = codes[keep], tid[keep]
    return codes, tid, flags


_RULES: dict[str, ArrayRule] = {"nfkc": _nfkc, "fullwidth": _fullwidth, "control": _control, "whitespace": _whitespace}


#: '&' and '<' and the characters that nfkc or fullwidth map to one of them, so that html would see it in a later
#: pass (a unit test checks the list against all of Unicode).
HTML_TRIGGERS = "&<\ufe60\ufe64\uff06\uff1c"


def clean_texts(
    texts: Sequence[str],
    rule_names: Sequence[str],
    *,
    max_length: int | None,
    passes: int,
    one: Callable[[str], Traced],
) -> tuple[list[str], dict[str, Flags]]:
    """The cleaned texts and, per rule, which texts it changed (``truncated`` for the cap): what ``one``, the
    per-text cleaner of these rules, gives text by text, computed on arrays where that is exact (module
    docstring); ``passes`` is the per-text loop's limit."""
    n = len(texts)
    names = list(dict.fromkeys(rule_names))
    if n == 0 or any(name not in _RULES and name != "html" for name in names):
        return _one_by_one(texts, names, one)
    joined = "".join(texts)
    if _SEPARATOR in joined:
        return _one_by_one(texts, names, one)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    codes: Codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.uint32)
    tid: Ids = np.repeat(np.arange(n, dtype=np.int32), lengths)
    # Texts html could change, or the cap cut, take the per-text rules (their code points stay in the arrays, and
    # what the arrays make of them is replaced below).
    aside = lengths > max_length if max_length is not None else np.zeros(n, dtype=bool)
    if "html" in names:
        aside |= _flag(tid, _HTML_TRIGGER_TABLE[np.minimum(codes, len(_HTML_TRIGGER_TABLE) - 1)], n)
    fired = {name: np.zeros(n, dtype=bool) for name in [*names, "truncated"]}
    array_rules = [(name, _RULES[name]) for name in rule_names if name in _RULES]
    if (array_rules and array_rules[-1][0] == "whitespace") or "whitespace" not in names:
        # One pass is a fixed point then: nfkc, fullwidth and control are idempotent maps and removals, none makes
        # what another changes (no NFKC form is full-width or a removed control character: a unit test checks
        # every code point), and whitespace, last, leaves spaces no rule changes. A second pass would change nothing.
        passes = 1
    for _ in range(passes):
        changed_this_pass = np.zeros(n, dtype=bool)
        no_wide = False  # no full-width character left: after nfkc or fullwidth (the others make none)
        for name, rule in array_rules:
            if name == "fullwidth" and no_wide:
                continue  # it would change nothing
            codes, tid, changed = rule(codes, tid, n)
            no_wide = no_wide or name in ("nfkc", "fullwidth")
            fired[name] |= changed
            changed_this_pass |= changed
        if not changed_this_pass.any():
            break
    # One separator after each text (all of them, so empty texts keep their place), then one decode and split.
    ends = np.cumsum(np.bincount(tid, minlength=n))
    marked = np.insert(codes, ends, _SEPARATOR_CODE)
    out = marked.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass").split(_SEPARATOR)[:n]
    for flags in fired.values():
        flags[aside] = False
    for i in np.flatnonzero(aside).tolist():
        out[i], rules_fired = one(texts[i])
        for name in rules_fired:
            fired[name][i] = True
    return out, fired


def _one_by_one(
    texts: Sequence[str], names: list[str], one: Callable[[str], Traced]
) -> tuple[list[str], dict[str, Flags]]:
    traced = [one(t) for t in texts]
    fired = {name: np.array([name in f for _, f in traced], dtype=bool) for name in [*names, "truncated"]}
    return [t for t, _ in traced], fired


_SEPARATOR_CODE = 0xE000  # private use: no rule maps to it or from it; texts holding it take the per-text rules
_SEPARATOR = chr(_SEPARATOR_CODE)
_HTML_TRIGGER_TABLE = np.zeros(max(map(ord, HTML_TRIGGERS)) + 2, dtype=bool)  # the last entry: all above
_HTML_TRIGGER_TABLE[[ord(c) for c in HTML_TRIGGERS]] = True
