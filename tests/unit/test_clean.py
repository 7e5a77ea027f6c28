from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from openautoglm.core.data.clean import (
    CLEAN_RULES,
    CleanConfig,
    clean_frame,
    clean_text,
    clean_text_traced,
)
from openautoglm.core.data.clean_batch import HTML_TRIGGERS, clean_texts
from openautoglm.core.data.schema import ROW_ID
from openautoglm.core.errors import MissingColumnsError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＰＰ老是闪退，　根本没法下单！", "APP老是闪退, 根本没法下单!"),
        ("<p>客服&amp;售后&nbsp;都很好</p>", "客服&售后 都很好"),
        ("a < b and c > d", "a < b and c > d"),
        ("&amp;lt;b&amp;gt;bold", "bold"),
        ("line\none\t\ttab  space", "line one tab space"),
        ("zero\u200bwidth\x00nul\x07bell", "zerowidthnulbell"),
        ("\ufeffBOM at start", "BOM at start"),
        ("送餐很慢……", "送餐很慢……"),  # NFKC would make "......": kept so text never grows
        ("ｶﾀｶﾅ", "カタカナ"),
        ("   ", ""),
    ],
)
def test_clean_text_examples(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_rules_that_fired_are_reported() -> None:
    text, fired = clean_text_traced("<b>ＡＢ</b>  c", CleanConfig())
    assert text == "AB c"
    assert fired == {"html", "nfkc", "whitespace"}


def test_length_cap_truncates_without_trailing_space() -> None:
    config = CleanConfig(max_length=4)
    text, fired = clean_text_traced("abc defg", config)
    assert text == "abc"
    assert "truncated" in fired


def test_fullwidth_rule_alone_when_nfkc_is_off() -> None:
    config = CleanConfig(rules=("fullwidth", "whitespace"))
    assert clean_text("ＡＢＣ　１２３", config) == "ABC 123"


def test_unknown_rule_is_rejected_with_choices() -> None:
    with pytest.raises(ValidationError, match="Could not resolve 'lowercase' among choices"):
        CleanConfig(rules=("html", "lowercase"))


def test_every_rule_is_registered() -> None:
    assert set(CLEAN_RULES.choices()) == {"html", "nfkc", "fullwidth", "control", "whitespace"}


# Text with the characters that matter: CJK, full-width forms, HTML, controls, spaces, combining marks.
_specials = [
    "&amp;",
    "&lt;",
    "<br>",
    "</p>",
    "\u3000",
    "\u200b",
    "\x00",
    "\ufb01",
    "\u00bd",
    "ｶ",
    "ﾞ",
    "e\u0301",
    "\ufdfa",
]
_alphabet = st.sampled_from([*"ab <>/&;#x0123 \t\n，。！…好差Ａ", *_specials])
_texts = st.one_of(st.text(), st.lists(_alphabet, max_size=40).map("".join))


@settings(max_examples=400, deadline=None)
@given(_texts)
def test_cleaning_is_idempotent(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once


@settings(max_examples=400, deadline=None)
@given(_texts, st.one_of(st.none(), st.integers(min_value=1, max_value=30)))
def test_cleaning_never_grows_text(text: str, cap: int | None) -> None:
    config = CleanConfig(max_length=cap)
    out = clean_text(text, config)
    assert len(out) <= len(text)
    if cap is not None:
        assert len(out) <= cap
    assert clean_text(out, config) == out


def _frame(texts: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame({ROW_ID: range(len(texts)), "text": pd.array(texts, dtype="string")})


def test_clean_frame_quarantines_empty_and_duplicates_with_reasons() -> None:
    frame = _frame(["好吃", " 好吃 ", None, "<br>", "难吃", "ＡＢ", "AB"])
    kept, rejected, report = clean_frame(frame, CleanConfig())
    assert kept[ROW_ID].tolist() == [0, 4, 5]
    assert kept["text"].tolist() == ["好吃", "难吃", "AB"]
    reasons = dict(zip(rejected["row_id"], rejected["reason"], strict=True))
    assert reasons == {
        2: "text missing or empty after cleaning",
        3: "text missing or empty after cleaning",
        1: "same text as row 0",
        6: "same text as row 5",
    }
    assert set(rejected["stage"]) == {"clean"}
    assert (report.rows_in, report.rows_out, report.dropped_empty, report.dropped_duplicate) == (7, 3, 2, 2)
    assert report.changed["nfkc"] == 1 and report.changed["html"] == 1


def test_duplicates_over_two_text_columns() -> None:
    frame = pd.DataFrame(
        {
            ROW_ID: [0, 1, 2],
            "text": pd.array(["a", "a", "a"], dtype="string"),
            "text_pair": pd.array(["b", "c", "b"], dtype="string"),
        }
    )
    kept, rejected, _ = clean_frame(frame, CleanConfig(text_columns=("text", "text_pair")))
    assert kept[ROW_ID].tolist() == [0, 1]
    assert rejected["reason"].tolist() == ["same text, text_pair as row 0"]


def test_keeping_duplicates_when_asked() -> None:
    kept, rejected, _ = clean_frame(_frame(["x", "x"]), CleanConfig(drop_duplicates=False))
    assert len(kept) == 2 and rejected.empty


def test_missing_text_column_says_which_columns_exist() -> None:
    with pytest.raises(MissingColumnsError, match=r"\['review'\]"):
        clean_frame(pd.DataFrame({ROW_ID: [0], "review": ["x"]}), CleanConfig())


# --- the array cleaner (core/data/clean_batch.py) against the per-text rules -------------------------------------


def _batch(texts: list[str], config: CleanConfig) -> list[tuple[str, set[str]]]:
    rules = [(name, CLEAN_RULES.resolve(name)) for name in config.rules]
    out, fired = clean_texts(
        texts,
        list(config.rules),
        max_length=config.max_length,
        passes=6,
        one=lambda text: clean_text_traced(text, config, rules),
    )
    return [(text, {name for name, flags in fired.items() if flags[i]}) for i, text in enumerate(out)]


_more = st.sampled_from(
    [*"\x1c\x85\xa0\u1680\u2000\u2028\u202f\u205f\ufeff\u00ad\ufe60\uff06\uff1c\ufe64\u2126\u212b\u0301", "\ud800"]
)
_wide_texts = st.one_of(_texts, st.lists(st.one_of(_alphabet, _more), max_size=30).map("".join))


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(_wide_texts, max_size=12),
    rules=st.permutations(["html", "nfkc", "fullwidth", "control", "whitespace"]).flatmap(
        lambda order: st.integers(min_value=0, max_value=5).map(lambda k: tuple(order[k:]))
    ),
    cap=st.one_of(st.none(), st.integers(min_value=1, max_value=20)),
)
def test_the_array_cleaner_gives_the_per_text_results(
    texts: list[str], rules: tuple[str, ...], cap: int | None
) -> None:
    """Any rule order and subset, the cap, surrogates, every kind of whitespace: the same texts and the same rules
    reported as fired, text by text."""
    config = CleanConfig(rules=rules, max_length=cap)
    expected = [clean_text_traced(text, config) for text in texts]
    assert _batch(texts, config) == expected


def test_what_the_array_cleaner_assumes_of_every_code_point() -> None:
    """html triggers are every character nfkc or fullwidth maps to '&' or '<'; and no character's nfkc form is a
    full-width one or a control character the control rule removes (unless it is one itself), so that with
    whitespace last one pass of the array rules is a fixed point."""
    nfkc, fullwidth, control = (CLEAN_RULES.resolve(name) for name in ("nfkc", "fullwidth", "control"))
    triggers, feeding = set(), []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        mapped = nfkc(c)
        if c in "&<" or mapped in ("&", "<") or fullwidth(c) in ("&", "<"):
            triggers.add(c)
        if mapped != c and (fullwidth(mapped) != mapped or (control(mapped) == "" and control(c) != "")):
            feeding.append(c)
    assert triggers == set(HTML_TRIGGERS)
    assert feeding == []


def test_texts_holding_the_separator_are_cleaned_one_by_one() -> None:
    texts = ["a\ue000b  c", "ＡＢ　c"]
    assert _batch(texts, CleanConfig()) == [clean_text_traced(t, CleanConfig()) for t in texts]
