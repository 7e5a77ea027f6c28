"""Agreement and answer resolution (core/annotation/agreement.py, core/annotation/answers.py): textbook kappas,
the Cohen/Fleiss choice, one-vs-rest per label, NER over characters' BIO tags, the evaluation slice's hash, and which
answer wins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from openautoglm.core.annotation.agreement import (
    bio_tags,
    cohen_kappa,
    entity_agreement,
    fleiss_kappa,
    kappa,
    label_agreement,
    span_f1,
)
from openautoglm.core.annotation.answers import in_eval_slice, item_digest, resolve
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.types import Entity

#: Fleiss (1971) as worked on Wikipedia's "Fleiss' kappa" page: 10 subjects, 14 raters, 5 categories; kappa 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_matches_the_textbook_example() -> None:
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.2099, abs=5e-4)


def test_fleiss_kappa_takes_items_with_different_numbers_of_raters() -> None:
    # perfect agreement whatever the raters per item: 1; and the constant-n case is unchanged by item order
    assert fleiss_kappa([[3, 0], [0, 2], [5, 0], [0, 4]]) == pytest.approx(1.0)
    assert fleiss_kappa(FLEISS_TABLE[::-1]) == pytest.approx(fleiss_kappa(FLEISS_TABLE))
    assert fleiss_kappa([[2, 0], [3, 0]]) is None  # one category only: chance agreement is total
    with pytest.raises(ConfigurationError, match="two or more ratings"):
        fleiss_kappa([[1, 0], [2, 0]])


def test_cohen_kappa_matches_the_textbook_example() -> None:
    # Wikipedia's "Cohen's kappa": 50 proposals, both yes 20, A yes B no 5, A no B yes 10, both no 15 -> 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(["x", "x"], ["x", "x"]) is None
    with pytest.raises(ConfigurationError, match="equally long"):
        cohen_kappa(["x"], [])


def test_two_annotators_get_cohen_more_get_fleiss_and_single_ratings_are_left_out() -> None:
    two = {1: {"a": "p", "b": "p"}, 2: {"a": "n", "b": "p"}, 3: {"a": "n", "b": "n"}, 4: {"a": "p"}}
    method, value = kappa(two)
    assert method == "cohen" and value == pytest.approx(cohen_kappa(["p", "n", "n"], ["p", "p", "n"]))
    three = {**two, 5: {"a": "p", "c": "p"}}
    method, value = kappa(three)
    counts = np.array([[2, 0], [1, 1], [0, 2], [2, 0]])  # (p, n) per item rated twice
    assert method == "fleiss" and value == pytest.approx(fleiss_kappa(counts))
    assert kappa({1: {"a": "p"}}) == ("none", None)


def test_label_agreement_reports_each_label_one_vs_rest() -> None:
    ratings = {
        1: {"a": "pos", "b": "pos"},
        2: {"a": "neg", "b": "neg"},
        3: {"a": "mid", "b": "neg"},
        4: {"a": "pos", "b": "pos"},
        5: {"a": "mid", "b": "mid"},
    }
    report = label_agreement(ratings, ("pos", "neg", "mid"))
    assert (report.method, report.items, report.annotators, report.observed) == ("cohen", 5, 2, 0.8)
    assert report.per_label["pos"] == pytest.approx(1.0)  # nobody confuses pos with anything
    assert report.per_label["neg"] is not None and report.per_label["neg"] < 1.0
    assert report.kappa is not None and 0 < report.kappa < 1


def test_ner_agreement_is_kappa_over_character_bio_tags() -> None:
    text = "张三在北京工作"
    assert bio_tags(len(text), [Entity("北京", "LOC", 3, 5)]) == ["O", "O", "O", "B-LOC", "I-LOC", "O", "O"]
    same = [Entity("张三", "PER", 0, 2), Entity("北京", "LOC", 3, 5)]
    perfect = entity_agreement({1: {"a": same, "b": same}}, {1: len(text)}, ("PER", "LOC"))
    assert (perfect.kappa, perfect.span_f1, perfect.units, perfect.per_label) == (
        pytest.approx(1.0),
        1.0,
        7,
        {"PER": pytest.approx(1.0), "LOC": pytest.approx(1.0)},
    )
    shifted = {1: {"a": same, "b": [Entity("张三在", "PER", 0, 3), Entity("北京", "LOC", 3, 5)]}}
    partial = entity_agreement(shifted, {1: len(text)}, ("PER", "LOC"))
    assert partial.span_f1 == pytest.approx(0.5)
    assert partial.kappa is not None and 0 < partial.kappa < 1
    assert partial.per_label["LOC"] == pytest.approx(1.0)
    assert span_f1({1: {"a": [], "b": []}}) == 1.0 and span_f1({1: {"a": []}}) is None


def test_the_evaluation_slice_takes_about_its_share_and_depends_on_the_seed() -> None:
    digests = [item_digest(f"row {i}") for i in range(4000)]
    share = sum(in_eval_slice(d, 0.1) for d in digests) / len(digests)
    assert 0.085 < share < 0.115
    assert not any(in_eval_slice(d, 0.0) for d in digests)
    assert [in_eval_slice(d, 0.1, 1) for d in digests] != [in_eval_slice(d, 0.1, 2) for d in digests]


@dataclass(frozen=True)
class Answer:
    id: int
    annotator: str
    label: str | None
    entities: tuple[Entity, ...] | None
    updated_at: datetime
    adjudicated: bool = False


def test_an_adjudication_wins_and_agreement_needs_two_plain_answers() -> None:
    t0 = datetime(2026, 12, 7, tzinfo=UTC)
    a = Answer(1, "a", "pos", None, t0)
    b = Answer(2, "b", "neg", None, t0 + timedelta(seconds=1))
    c = Answer(3, "c", "neg", None, t0 + timedelta(seconds=2))
    assert (resolve([a, b, c]).winner.label, resolve([a, b, c]).votes, resolve([a, b, c]).disputed) == ("neg", 2, True)
    settled = resolve([a, b, c, Answer(4, "r", "pos", None, t0, adjudicated=True)])
    assert (settled.winner.label, settled.adjudicated, settled.disputed, settled.gold) == ("pos", True, False, True)
    assert resolve([b, c]).agreed and resolve([b, c]).gold
    assert not resolve([a]).agreed and not resolve([a]).gold
    later = Answer(5, "s", "neg", None, t0 + timedelta(seconds=9), adjudicated=True)
    assert resolve([a, Answer(4, "r", "pos", None, t0, adjudicated=True), later]).winner.label == "neg"
    with pytest.raises(ConfigurationError):
        resolve([])
