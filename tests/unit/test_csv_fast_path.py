"""The columnar CSV path (pyarrow) gives exactly what the line path (stdlib csv) gives, or steps aside for it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openautoglm.adapters.sources import CsvSource, delimited


def _both(path: Path, monkeypatch: pytest.MonkeyPatch, **spec: object) -> tuple[object, object, bool]:
    """(columnar result, line result, whether the columnar path took the file)."""
    source = CsvSource(path=path, on_error="quarantine", **spec)
    taken: list[bool] = []
    original = delimited._read_columnar

    def spy(*args: object, **kwargs: object) -> object:
        out = original(*args, **kwargs)  # type: ignore[arg-type]
        taken.append(out is not None)
        return out

    with monkeypatch.context() as m:
        m.setattr(delimited, "_read_columnar", spy)
        fast = delimited.read_csv(source, progress=False)
    with monkeypatch.context() as m:
        m.setattr(delimited, "_read_columnar", lambda *a, **k: None)
        slow = delimited.read_csv(source, progress=False)
    return fast, slow, bool(taken and taken[0])


def _same(fast: object, slow: object) -> None:
    pd.testing.assert_frame_equal(fast.frame, slow.frame)  # type: ignore[attr-defined]
    pd.testing.assert_series_equal(fast.lines, slow.lines)  # type: ignore[attr-defined]
    pd.testing.assert_frame_equal(fast.quarantine, slow.quarantine)  # type: ignore[attr-defined]
    assert fast.rows_read == slow.rows_read  # type: ignore[attr-defined]


def test_a_clean_file_takes_the_columnar_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.csv"
    path.write_text('id,text\r\n1,"物流很快，包装也很仔细"\r\n2,\r\n3,"a ""quoted"" word, and a comma"\r\n', "utf-8")
    fast, slow, taken = _both(path, monkeypatch)
    assert taken
    _same(fast, slow)
    assert fast.frame["text"].tolist() == ["物流很快，包装也很仔细", pd.NA, 'a "quoted" word, and a comma']  # type: ignore[attr-defined]


def test_values_with_newlines_keep_their_line_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.csv"
    path.write_text('id,text\n1,"two\nlines"\n2,"three\r\nlines\nhere"\n3,last\n', "utf-8")
    fast, slow, taken = _both(path, monkeypatch)
    assert taken
    _same(fast, slow)
    assert fast.lines.tolist() == [2, 4, 7]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("id,text\n1,a\n2,b,extra\n3,c\n", "a row with the wrong field count"),
        ("id,text\n1,a\n\n2,b\n", "a blank line"),
        ("id,text\r1,a\r2,b\r", "lone carriage returns"),
    ],
)
def test_the_line_path_reads_what_the_columnar_one_cannot_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, why: str
) -> None:
    path = tmp_path / "a.csv"
    path.write_text(content, "utf-8", newline="")
    fast, slow, taken = _both(path, monkeypatch)
    assert not taken, why
    _same(fast, slow)


def test_undecodable_bytes_go_down_the_line_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"id,text\n1,good\n2,bad \xff\xfe bytes\n3,fine\n")
    fast, slow, taken = _both(path, monkeypatch, encoding="utf-8")
    assert not taken
    _same(fast, slow)
    assert fast.quarantine["rule"].tolist() == ["undecodable"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig"])
def test_other_ascii_compatible_encodings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes('id,text\n1,"好评，推荐"\n2,差评\n'.encode(encoding))
    fast, slow, taken = _both(path, monkeypatch)
    assert taken
    _same(fast, slow)


_VALUE = st.lists(st.sampled_from([*list('ab ,"\n\t中，\x00\u3000\ufeff'), "\r\n"]), max_size=6).map("".join)
# A field as written: properly quoted (quotes doubled), bare (whatever the value holds, so raw delimiters, quotes
# and newlines break rows), or a fixed oddity.
_QUOTED = _VALUE.map(lambda v: '"' + v.replace('"', '""') + '"')
_FIELD = st.one_of(
    _QUOTED,
    _QUOTED,
    _VALUE.filter(lambda v: not any(c in v for c in ',"\n')),
    _VALUE,
    st.sampled_from(["", '""', '"a,b"', '"x""y"', '"line\nbreak"', "  ", '"open', 'mid"quote']),
)
_ROW = st.one_of(st.lists(_FIELD, min_size=3, max_size=3), st.lists(_FIELD, min_size=1, max_size=4))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_ROW, max_size=6), ending=st.sampled_from(["\n", "\r\n"]), final=st.booleans())
def test_both_paths_agree_on_any_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[list[str]], ending: str, final: bool
) -> None:
    """Random raw CSV text (quotes, delimiters, newlines, NUL, BOMs, wrong field counts): whichever path reads it,
    the dataset is the line path's."""
    body = ending.join(",".join(fields) for fields in rows)
    content = "a,b,c" + (ending + body if rows else "") + (ending if final else "")
    path = tmp_path / "f.csv"
    path.write_bytes(content.encode("utf-8"))
    fast, slow, _ = _both(path, monkeypatch, encoding="utf-8")
    _same(fast, slow)
