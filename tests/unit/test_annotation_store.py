"""The annotation store on a real SQLite file: projects, items idempotent by digest, predictions per round, answers
checked against the project, re-labels, the queue, the label snapshot and its digest, the CSV/JSONL/MLflow exports,
and four processes labelling at once (the same check runs on PostgreSQL in tests/integration)."""

from __future__ import annotations

import json
import multiprocessing
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.metrics import cohen_kappa_score

from openautoglm.adapters.annotation_store import (
    MLFLOW_DIGEST_CHARS,
    AnnotationNotFound,
    AnnotationStore,
    InvalidAnswer,
    ItemNotFound,
    NewAnnotation,
    NewItem,
    NewPrediction,
    ProjectExists,
    ProjectNotFound,
    ProjectSpec,
    Round,
    StoreUnavailable,
    Training,
    item_digest,
    snapshot_digest,
)
from openautoglm.core.annotation.answers import in_eval_slice
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.types import Entity
from openautoglm.settings import get_settings

LABELS = ("正面", "负面", "中性")
REVIEWS = ("味道很好，送餐也快", "太咸了，不会再点", "还行吧", "包装破了，汤洒了一半", "老板人很好")


@pytest.fixture
def store(tmp_path: Path) -> Any:
    opened = AnnotationStore(f"sqlite:///{tmp_path / 'deep' / 'annotations.db'}")
    yield opened
    opened.close()


def reviews(store: AnnotationStore, name: str = "reviews") -> tuple[int, ...]:
    store.create_project(ProjectSpec(name=name, labels=LABELS, guidelines="选最贴切的情感。"))
    return store.add_items(name, [NewItem(text=t, source="waimai.csv", row_id=i) for i, t in enumerate(REVIEWS)]).ids


def ner(store: AnnotationStore) -> tuple[int, ...]:
    store.create_project(ProjectSpec(name="places", task_type="ner", entity_types=("PER", "LOC")))
    texts = ["张三在北京工作", "李四去了上海", "今天天气不错"]
    return store.add_items("places", [NewItem(text=t, row_id=f"s{i}") for i, t in enumerate(texts)]).ids


# --- projects ---------------------------------------------------------------------------------------------------


def test_projects_are_created_read_listed_and_named_once(store: AnnotationStore) -> None:
    created = store.create_project(ProjectSpec(name="reviews", labels=LABELS, guidelines="选最贴切的情感。"))
    store.create_project(ProjectSpec(name="places", task_type="ner", entity_types=("PER", "LOC")))
    assert store.get_project("reviews") == created
    assert (created.labels, created.guidelines, created.created_at.tzinfo is not None) == (
        LABELS,
        "选最贴切的情感。",
        True,
    )
    assert [p.name for p in store.list_projects()] == ["places", "reviews"]
    assert store.get_project("places").choices == ("PER", "LOC")
    with pytest.raises(ProjectExists, match="'reviews' exists already"):
        store.create_project(ProjectSpec(name="reviews", labels=("a", "b")))
    with pytest.raises(ProjectNotFound, match="No annotation project named 'nope'"):
        store.get_project("nope")
    with pytest.raises(ProjectNotFound):
        store.add_items("nope", [NewItem(text="x")])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"labels": ("only",)}, "two or more labels"),
        ({"labels": ("a", "a")}, "repeats"),
        ({"labels": ("a", " ")}, "non-blank"),
        ({"task_type": "ner", "entity_types": ()}, "one or more entity_types"),
        ({"task_type": "ner", "entity_types": ("PER",), "labels": ("a", "b")}, "no labels"),
        ({"task_type": "semantic_matching", "labels": ("a", "b")}, "text_classification"),
        ({"name": "has space", "labels": ("a", "b")}, "pattern"),
    ],
)
def test_a_project_spec_that_cannot_be_labelled_is_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ProjectSpec.model_validate({"name": "p", **fields})


def test_the_url_is_one_setting_with_a_sqlite_default_under_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_settings().annotations_store_url == f"sqlite:///{home.resolve() / 'annotations.db'}"
    default = AnnotationStore()
    assert default.url == get_settings().annotations_store_url
    default.create_project(ProjectSpec(name="p", labels=("a", "b")))
    assert (home / "annotations.db").is_file()
    default.close()
    monkeypatch.setenv("OPENAUTOGLM_ANNOTATIONS_URL", "postgresql+psycopg://annotator:s3cret@db.example/labels")
    configured = AnnotationStore()
    assert configured.backend == "postgresql" and "s3cret" not in configured.safe_url
    with pytest.raises(ConfigurationError, match="SQLite or PostgreSQL, not 'mysql'"):
        AnnotationStore("mysql+pymysql://root@127.0.0.1/test")
    nothing_there = AnnotationStore("postgresql+psycopg://annotator:s3cret@127.0.0.1:1/labels")
    with pytest.raises(StoreUnavailable, match=r"Cannot open the annotation store at .*127\.0\.0\.1:1") as caught:
        nothing_there.list_projects()
    assert "s3cret" not in str(caught.value) and "OPENAUTOGLM_ANNOTATIONS_URL" in str(caught.value)


# --- items and predictions --------------------------------------------------------------------------------------


def test_items_are_added_once_per_text(store: AnnotationStore) -> None:
    ids = reviews(store)
    assert list(ids) == sorted(set(ids))  # ids follow the rows
    again = store.add_items(
        "reviews", [NewItem(text=REVIEWS[1], row_id=99), NewItem(text="新的一条"), NewItem(text="新的一条")]
    )
    assert (again.added, again.duplicates) == (1, 2)
    assert again.ids[0] == ids[1] and again.ids[1] == again.ids[2] and again.ids[1] not in ids
    held = store.get_item("reviews", ids[1])
    assert (held.text, held.source, held.row_id, held.digest) == (
        REVIEWS[1],
        "waimai.csv",
        "1",
        item_digest(REVIEWS[1]),
    )
    assert [i.id for i in store.items("reviews")] == sorted({*ids, again.ids[1]})
    # the same text in another project is another item, and not reachable through this one
    store.create_project(ProjectSpec(name="other", labels=("a", "b")))
    (foreign,) = store.add_items("other", [NewItem(text=REVIEWS[1])]).ids
    assert foreign not in ids
    with pytest.raises(ItemNotFound, match=f"'reviews' has no item {foreign}"):
        store.get_item("reviews", foreign)
    with pytest.raises(ItemNotFound, match=f"no item {foreign}"):
        store.record_annotation("reviews", foreign, "alice", "正面")


def test_predictions_are_stored_per_round_and_checked(store: AnnotationStore) -> None:
    ids = reviews(store)
    first = [NewPrediction(item_id=i, label="正面", scores={"正面": 0.5, "负面": 0.3, "中性": 0.2}) for i in ids]
    assert store.add_predictions("reviews", first, round=0, model="local-auto") == len(ids)
    stored = store.predictions("reviews", round=0)
    assert [p.item_id for p in stored] == sorted(ids)
    assert stored[0].margin == pytest.approx(0.2) and stored[0].model_version == ""
    # the same item, round and model again replaces; a later round is kept beside it
    store.add_predictions(
        "reviews", [NewPrediction(item_id=ids[0], label="负面", margin=0.9)], round=0, model="local-auto"
    )
    store.add_predictions(
        "reviews", [NewPrediction(item_id=ids[0], label="中性")], round=1, model="student", model_version="3"
    )
    assert [(p.round, p.label, p.margin) for p in store.predictions("reviews", item_ids=[ids[0]])] == [
        (0, "负面", 0.9),
        (1, "中性", None),
    ]
    latest = {p.item_id: p for p in store.predictions("reviews", latest=True)}
    assert len(latest) == len(ids) and latest[ids[0]].model_version == "3" and latest[ids[1]].label == "正面"
    with pytest.raises(InvalidAnswer, match="'好评' is not a label of 'reviews'"):
        store.add_predictions("reviews", [NewPrediction(item_id=ids[0], label="好评")], round=2, model="m")
    with pytest.raises(InvalidAnswer, match=r"scores \['好评'\]"):
        store.add_predictions(
            "reviews", [NewPrediction(item_id=ids[0], label="正面", scores={"好评": 1.0})], round=2, model="m"
        )
    with pytest.raises(ItemNotFound, match="no item 999"):
        store.add_predictions("reviews", [NewPrediction(item_id=999, label="正面")], round=2, model="m")
    with pytest.raises(ConfigurationError, match="round must be 0 or more"):
        store.add_predictions("reviews", [], round=-1, model="m")
    with pytest.raises(ValidationError, match="finite"):
        NewPrediction(item_id=1, label="正面", scores={"正面": float("nan")})
    assert len(store.predictions("reviews")) == len(ids) + 1


def test_entity_predictions_are_checked_against_the_text(store: AnnotationStore) -> None:
    ids = ner(store)
    good = NewPrediction(item_id=ids[0], entities=(Entity("北京", "LOC", 3, 5), Entity("张三", "PER", 0, 2)))
    store.add_predictions("places", [good], round=0, model="local-lac")
    (stored,) = store.predictions("places")
    assert stored.entities == (Entity("张三", "PER", 0, 2), Entity("北京", "LOC", 3, 5)) and stored.label is None
    with pytest.raises(InvalidAnswer, match="'ORG' is not an entity type"):
        store.add_predictions(
            "places", [NewPrediction(item_id=ids[0], entities=(Entity("北京", "ORG", 3, 5),))], round=0, model="m"
        )
    with pytest.raises(InvalidAnswer, match="must be a list of entities"):
        store.add_predictions("places", [NewPrediction(item_id=ids[0], label="LOC")], round=0, model="m")


# --- annotations ------------------------------------------------------------------------------------------------


def test_a_relabel_replaces_the_answer_and_keeps_when_it_was_first_given(store: AnnotationStore) -> None:
    ids = reviews(store)
    first = store.record_annotation("reviews", ids[0], "alice", "负面", seconds=4.0)
    time.sleep(0.01)
    second = store.record_annotation("reviews", ids[0], "alice", "正面", seconds=1.5)
    assert (second.id, second.label, second.seconds) == (first.id, "正面", 5.5)
    assert second.created_at == first.created_at < second.updated_at
    assert [(a.annotator, a.label) for a in store.annotations("reviews")] == [("alice", "正面")]
    # several answers at once: the last answer per (item, annotator) wins and the seconds add up
    stored = store.record_annotations(
        "reviews",
        [
            NewAnnotation(item_id=ids[1], annotator="bob", answer="负面", seconds=2),
            NewAnnotation(item_id=ids[1], annotator="bob", answer="中性", seconds=3),
            NewAnnotation(item_id=ids[0], annotator="bob", answer="正面"),
        ],
    )
    assert stored == 2
    bob = {a.item_id: (a.label, a.seconds) for a in store.annotations("reviews", annotator="bob")}
    assert bob == {ids[0]: ("正面", 0.0), ids[1]: ("中性", 5.0)}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("好评", "'好评' is not a label of 'reviews'"),
        ([{"text": "味道", "type": "PER", "start": 0, "end": 2}], "must be one label"),
    ],
)
def test_a_classification_answer_outside_the_labels_is_refused(
    store: AnnotationStore, answer: Any, message: str
) -> None:
    ids = reviews(store)
    with pytest.raises(InvalidAnswer, match=message) as caught:
        store.record_annotation("reviews", ids[0], "alice", answer)
    assert caught.value.hint and store.annotations("reviews") == []


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("PER", "must be a list of entities"),
        ([Entity("北京", "ORG", 3, 5)], "'ORG' is not an entity type of 'places'"),
        ([Entity("北京", "LOC", 2, 4)], r"the span 2-4 of the item's text is '在北', not '北京'"),
        ([Entity("工作", "LOC", 5, 9)], "outside the item's text"),
        ([Entity("北京", "LOC", 3, 5), Entity("北京", "LOC", 3, 5)], "given twice"),
    ],
)
def test_an_entity_answer_must_be_the_text_at_its_offsets(store: AnnotationStore, answer: Any, message: str) -> None:
    ids = ner(store)
    with pytest.raises(InvalidAnswer, match=message):
        store.record_annotation("places", ids[0], "alice", answer)


def test_entity_answers_round_trip_and_none_is_an_answer(store: AnnotationStore) -> None:
    ids = ner(store)
    given = [
        {"text": "上海", "type": "LOC", "start": 4, "end": 6},
        {"text": "李四", "type": "PER", "start": 0, "end": 2},
    ]
    stored = store.record_annotation("places", ids[1], "alice", given)
    assert stored.entities == (Entity("李四", "PER", 0, 2), Entity("上海", "LOC", 4, 6)) and stored.label is None
    assert store.record_annotation("places", ids[2], "alice", []).answer == ()


def test_who_and_how_long_are_checked(store: AnnotationStore) -> None:
    ids = reviews(store)
    with pytest.raises(ValidationError, match="annotator"):
        store.record_annotation("reviews", ids[0], "", "正面")
    with pytest.raises(ValidationError, match="seconds"):
        store.record_annotation("reviews", ids[0], "alice", "正面", seconds=-1)


def test_the_queue_holds_what_this_annotator_has_not_answered(store: AnnotationStore) -> None:
    ids = reviews(store)
    assert store.next_items("reviews", "alice", limit=10) == []  # nothing queued, no evaluation item
    # round 0 queues three rows, round 1 two more; within a round the higher score comes first
    assert store.queue_items("reviews", 0, [ids[2], ids[0], ids[4]], strategy="margin", scores=[0.2, 0.9, 0.5]) == 3
    assert store.queue_items("reviews", 1, [ids[1], ids[4], ids[3]], strategy="entropy", scores=[0.1, 1.0, 0.3]) == 2
    assert store.queue_items("reviews", 1, [ids[1], ids[3]], strategy="entropy") == 0  # idempotent
    assert [(q.item_id, q.round) for q in store.queue("reviews")] == [
        (ids[0], 0),
        (ids[4], 0),
        (ids[2], 0),
        (ids[3], 1),
        (ids[1], 1),
    ]
    assert [i.id for i in store.next_items("reviews", "alice", 10)] == [ids[0], ids[4], ids[2], ids[3], ids[1]]
    store.record_annotation("reviews", ids[0], "alice", "正面")
    store.record_annotation("reviews", ids[4], "bob", "负面")  # answered by anyone: done with, for everyone
    assert [i.id for i in store.next_items("reviews", "alice", limit=10)] == [ids[2], ids[3], ids[1]]
    assert store.next_items("reviews", "carol") == []  # alice holds a lease on every open queued item
    assert store.release("reviews", ids[2], "alice") and not store.release("reviews", ids[2], "alice")
    assert [i.id for i in store.next_items("reviews", "carol")] == [ids[2]]  # released (a skip): carol's now
    assert [i.id for i in store.next_items("reviews", "carol")] == [ids[2]]  # asking again renews her own lease
    assert [i.id for i in store.next_items("reviews", "alice", limit=10)] == [ids[3], ids[1]]
    assert [i.id for i in store.next_items("reviews", "dave", lease_s=0.05)] == []
    assert not store.lease("reviews", ids[3], "dave") and store.lease("reviews", ids[3], "alice")
    assert [q.item_id for q in store.queue("reviews", round=1, open_only=True)] == [ids[3], ids[1]]
    with pytest.raises(ConfigurationError, match="limit must be 1 or more"):
        store.next_items("reviews", "alice", limit=0)
    with pytest.raises(ConfigurationError, match="lease_s must be a positive"):
        store.next_items("reviews", "alice", lease_s=0)
    with pytest.raises(ConfigurationError, match="one score per item"):
        store.queue_items("reviews", 2, [ids[0]], strategy="margin", scores=[1.0, 2.0])
    with pytest.raises(ItemNotFound):
        store.queue_items("reviews", 2, [10_000], strategy="margin")
    status = store.status("reviews")
    assert (status.items, status.labelled_items, status.annotations, status.annotators) == (5, 2, 2, 2)
    assert (status.eval_items, status.queued, status.round) == (0, 5, None)


def test_rounds_and_trainings_are_recorded_once_per_key(store: AnnotationStore) -> None:
    reviews(store)
    store.record_round("reviews", Round(round=0, model="local-auto", label_count=0, queued=3))
    store.record_round("reviews", Round(round=0, model="local-auto", label_count=0, queued=5))  # a rerun
    store.record_round("reviews", Round(round=1, model="mlflow:/reviews/1", model_version="1", label_count=4))
    assert [(r.round, r.model, r.queued) for r in store.rounds("reviews")] == [
        (0, "local-auto", 5),
        (1, "mlflow:/reviews/1", 0),
    ]
    assert store.status("reviews").round == 1
    first = Training(round=0, label_count=4, label_digest="d1", model_name="reviews", model_version="1", score=0.5)
    store.record_training("reviews", first)
    store.record_training("reviews", first.model_copy(update={"model_version": "2", "aliases": ("candidate",)}))
    store.record_training("reviews", first.model_copy(update={"score": 0.75}))  # version 1 again: replaced
    assert [(t.model_version, t.score, t.aliases) for t in store.trainings("reviews")] == [
        ("1", 0.75, ()),
        ("2", 0.5, ("candidate",)),
    ]


def test_tables_of_an_older_version_gain_the_new_columns(tmp_path: Path) -> None:
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = AnnotationStore(url)
    ids = reviews(old)
    old.record_annotation("reviews", ids[0], "alice", "正面")
    with old.engine.begin() as conn:  # the tables as the first version made them
        for table, column in (
            ("openautoglm_annotation_items", "eval"),
            ("openautoglm_annotations", "adjudicated"),
            ("openautoglm_annotation_projects", "eval_share"),
        ):
            conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
    old.close()
    store = AnnotationStore(url)
    assert [i.eval for i in store.items("reviews")] == [False] * len(ids)
    assert store.get_project("reviews").eval_share == pytest.approx(0.1)
    assert store.label_snapshot("reviews").rows[0].adjudicated is False
    store.record_annotation("reviews", ids[1], "rita", "负面", adjudicated=True)
    assert store.label_snapshot("reviews").rows[1].adjudicated
    store.close()


def evaluation_project(store: AnnotationStore, share: float = 0.5) -> tuple[list[int], list[int]]:
    """A project whose items are split by the seeded hash: (evaluation ids, other ids)."""
    store.create_project(ProjectSpec(name="halves", labels=LABELS, eval_share=share, eval_seed=7))
    texts = [f"评论 {i}" for i in range(40)]
    ids = store.add_items("halves", [NewItem(text=t) for t in texts]).ids
    items = store.items("halves")
    expected = [in_eval_slice(item_digest(t), share, 7) for t in texts]
    assert [item.eval for item in items] == expected  # the stored flag is the seeded hash of the digest
    return [i for i, e in zip(ids, expected, strict=True) if e], [
        i for i, e in zip(ids, expected, strict=True) if not e
    ]


def test_the_evaluation_slice_is_a_seeded_hash_of_the_digest(store: AnnotationStore, tmp_path: Path) -> None:
    evaluation, rest = evaluation_project(store)
    assert 10 <= len(evaluation) <= 30 and rest
    # the same texts in another store, in another order, land on the same side; another seed moves some
    other = AnnotationStore(f"sqlite:///{tmp_path / 'other.db'}")
    other.create_project(ProjectSpec(name="halves", labels=LABELS, eval_share=0.5, eval_seed=7))
    other.create_project(ProjectSpec(name="reseeded", labels=LABELS, eval_share=0.5, eval_seed=8))
    texts = [f"评论 {i}" for i in reversed(range(40))]
    other.add_items("halves", [NewItem(text=t) for t in texts])
    other.add_items("reseeded", [NewItem(text=t) for t in texts])
    side = {item.text: item.eval for item in store.items("halves")}
    assert {item.text: item.eval for item in other.items("halves")} == side
    assert {item.text: item.eval for item in other.items("reseeded")} != side
    other.close()
    assert store.status("halves").eval_items == len(evaluation)
    with pytest.raises(ConfigurationError, match="evaluation slice"):
        store.queue_items("halves", 0, [rest[0], evaluation[0]], strategy="margin")
    assert store.queue("halves") == []  # nothing of a refused call is queued


def test_evaluation_items_go_to_two_different_annotators_after_the_queue(store: AnnotationStore) -> None:
    evaluation, rest = evaluation_project(store)
    store.queue_items("halves", 0, rest[:2], strategy="margin")
    served = [i.id for i in store.next_items("halves", "alice", limit=4)]
    assert served == [*rest[:2], *evaluation[:2]]  # the queue first, then evaluation items by id
    store.record_annotation("halves", evaluation[1], "alice", "正面")
    for item_id in rest[:2]:  # alice's leases end (skips): bob may be served the queue
        store.release("halves", item_id, "alice")
    # bob: the queue, then the evaluation item alice answered (it needs a second answer) before fresh ones
    assert [i.id for i in store.next_items("halves", "bob", limit=4)] == [*rest[:2], evaluation[1], evaluation[0]]
    assert evaluation[1] not in [i.id for i in store.next_items("halves", "alice", limit=100)]
    store.record_annotation("halves", evaluation[1], "bob", "负面")
    store.record_annotation("halves", evaluation[1], "rita", "负面", adjudicated=True)  # does not count as a rating
    assert evaluation[1] not in [i.id for i in store.next_items("halves", "carol", limit=100)]  # two answers: done
    # every evaluation item and no other unqueued row is ever served (the queue is bob's lease, evaluation items
    # are not leased)
    assert {i.id for i in store.next_items("halves", "dave", limit=100)} == set(evaluation) - {evaluation[1]}
    assert {i.id for i in store.next_items("halves", "bob", limit=100)} == set(rest[:2]) | set(evaluation) - {
        evaluation[1]
    }


def test_an_adjudicated_answer_wins_and_leaves_the_reviewers_queue(store: AnnotationStore) -> None:
    ids = reviews(store)
    for annotator in ("a", "b"):
        store.record_annotation("reviews", ids[0], annotator, "负面")
    store.record_annotation("reviews", ids[0], "c", "正面")
    store.record_annotation("reviews", ids[1], "a", "正面")
    store.record_annotation("reviews", ids[1], "b", "负面")
    store.record_annotation("reviews", ids[2], "a", "中性")
    store.record_annotation("reviews", ids[2], "b", "中性")
    assert [(d.item.id, sorted(a.annotator for a in d.annotations)) for d in store.disagreements("reviews")] == [
        (ids[0], ["a", "b", "c"]),
        (ids[1], ["a", "b"]),
    ]
    before = store.label_snapshot("reviews")
    assert [(r.label, r.adjudicated, r.agreed) for r in before.rows] == [
        ("负面", False, False),
        ("负面", False, False),  # the tie goes to the answer given last
        ("中性", False, True),
    ]
    store.record_annotation("reviews", ids[0], "rita", "正面", adjudicated=True)  # against the majority of two
    after = store.label_snapshot("reviews")
    assert (after.rows[0].label, after.rows[0].adjudicated, after.rows[0].votes) == ("正面", True, 2)
    assert after.digest != before.digest
    assert [d.item.id for d in store.disagreements("reviews")] == [ids[1]]
    # a later plain answer by anyone else does not overturn the adjudication
    store.record_annotation("reviews", ids[0], "d", "负面")
    assert store.label_snapshot("reviews").rows[0].label == "正面"
    assert {a.annotator: a.adjudicated for a in store.annotations("reviews") if a.item_id == ids[0]}["rita"]


def test_agreement_is_reported_per_project_and_label(store: AnnotationStore) -> None:
    ids = reviews(store)
    assert store.agreement("reviews").method == "none"
    answers = {"a": ["正面", "负面", "中性", "正面", "负面"], "b": ["正面", "负面", "负面", "正面", "中性"]}
    for annotator, labels in answers.items():
        for item_id, label in zip(ids, labels, strict=True):
            store.record_annotation("reviews", item_id, annotator, label)
    store.record_annotation("reviews", ids[2], "rita", "中性", adjudicated=True)  # not a rating
    two = store.agreement("reviews")
    assert (two.method, two.items, two.annotators, two.observed) == ("cohen", 5, 2, pytest.approx(3 / 5))
    assert two.kappa == pytest.approx(cohen_kappa_score(answers["a"], answers["b"]))
    assert set(two.per_label) == set(LABELS)
    store.record_annotation("reviews", ids[0], "c", "正面")
    three = store.agreement("reviews")
    assert (three.method, three.annotators) == ("fleiss", 3)


def test_entity_agreement_counts_characters(store: AnnotationStore) -> None:
    ids = ner(store)
    store.record_annotation("places", ids[0], "a", [Entity("张三", "PER", 0, 2), Entity("北京", "LOC", 3, 5)])
    store.record_annotation("places", ids[0], "b", [Entity("张三", "PER", 0, 2)])
    store.record_annotation("places", ids[1], "a", [Entity("李四", "PER", 0, 2)])
    report = store.agreement("places")
    assert (report.method, report.unit, report.items, report.units) == ("cohen", "character", 1, 7)
    assert report.span_f1 == pytest.approx(2 * 1 / 3)
    assert report.kappa is not None and 0 < report.kappa < 1
    assert [d.item.id for d in store.disagreements("places")] == [ids[0]]


# --- the label snapshot -----------------------------------------------------------------------------------------


def test_the_snapshot_takes_the_majority_and_a_tie_goes_to_the_last_answer(store: AnnotationStore) -> None:
    ids = reviews(store)
    for annotator, label in (("a", "负面"), ("b", "正面"), ("c", "负面")):
        store.record_annotation("reviews", ids[0], annotator, label)
    store.record_annotation("reviews", ids[1], "a", "中性")
    time.sleep(0.01)
    store.record_annotation("reviews", ids[1], "b", "负面")
    snapshot = store.label_snapshot("reviews")
    assert [(r.item_id, r.label, r.votes, r.annotators) for r in snapshot.rows] == [
        (ids[0], "负面", 2, 3),
        (ids[1], "负面", 1, 2),
    ]
    time.sleep(0.01)
    store.record_annotation("reviews", ids[1], "a", "中性")  # a re-label is now the last answer of the tie
    assert store.label_snapshot("reviews").rows[1].label == "中性"


def test_the_snapshot_digest_follows_the_labels_only(store: AnnotationStore, tmp_path: Path) -> None:
    ids = reviews(store)
    for item_id, label in zip(ids[:3], ("正面", "负面", "中性"), strict=True):
        store.record_annotation("reviews", item_id, "alice", label)
    first = store.label_snapshot("reviews")
    assert first.digest == store.label_snapshot("reviews").digest
    pairs = zip(REVIEWS[:3], ("正面", "负面", "中性"), strict=True)
    assert first.digest == snapshot_digest((item_digest(text), label) for text, label in pairs)
    # the same labels given in another order, by other people, in another database: the same digest
    elsewhere = AnnotationStore(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    elsewhere.create_project(ProjectSpec(name="reviews", labels=LABELS))
    other_ids = elsewhere.add_items("reviews", [NewItem(text=t) for t in reversed(REVIEWS[:3])]).ids
    for item_id, label in zip(other_ids, ("中性", "负面", "正面"), strict=True):
        elsewhere.record_annotation("reviews", item_id, "bob", label, seconds=9)
    assert elsewhere.label_snapshot("reviews").digest == first.digest
    elsewhere.close()
    # a changed label changes it; changing it back restores it; a second agreeing annotator leaves it
    store.record_annotation("reviews", ids[0], "alice", "负面")
    changed = store.label_snapshot("reviews").digest
    assert changed != first.digest
    store.record_annotation("reviews", ids[0], "alice", "正面")
    store.record_annotation("reviews", ids[0], "bob", "正面")
    assert store.label_snapshot("reviews").digest == first.digest
    store.record_annotation("reviews", ids[3], "alice", "负面")
    assert store.label_snapshot("reviews").digest not in (first.digest, changed)
    assert len(store.label_snapshot("reviews").digest) == 64


# --- exports ----------------------------------------------------------------------------------------------------


def labelled(store: AnnotationStore) -> None:
    ids = reviews(store)
    for item_id, label in zip(ids, ("正面", "负面", "中性", "负面"), strict=False):
        store.record_annotation("reviews", item_id, "alice", label, seconds=2)
    store.record_annotation("reviews", ids[0], "bob", "中性")


def test_csv_and_jsonl_exports_equal_the_store(store: AnnotationStore, tmp_path: Path) -> None:
    labelled(store)
    snapshot = store.label_snapshot("reviews")
    assert store.export("reviews", tmp_path / "out" / "labels.csv") == snapshot
    frame = pd.read_csv(tmp_path / "out" / "labels.csv", dtype=str, keep_default_na=False)
    assert list(frame.columns) == [
        *("item_id", "source", "row_id", "text", "label", "votes", "annotators", "digest"),
        *("eval", "adjudicated", "agreed"),
    ]
    expected = snapshot.frame().astype(str)
    pd.testing.assert_frame_equal(frame, expected)
    assert list(zip(frame["text"], frame["label"], strict=True)) == [
        (REVIEWS[0], "中性"),  # alice 正面 then bob 中性: a tie, the last answer wins
        (REVIEWS[1], "负面"),
        (REVIEWS[2], "中性"),
        (REVIEWS[3], "负面"),
    ]
    store.export("reviews", tmp_path / "labels.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text(encoding="utf-8").splitlines()]
    assert lines == [r.model_dump(mode="json", exclude={"entities"}) for r in snapshot.rows]
    assert [(line["votes"], line["annotators"]) for line in lines] == [(1, 2), (1, 1), (1, 1), (1, 1)]
    assert not list(tmp_path.glob(".*.partial"))
    with pytest.raises(ConfigurationError, match=r"export format of 'labels\.txt'"):
        store.export("reviews", tmp_path / "labels.txt")


def test_entity_exports_keep_the_spans(store: AnnotationStore, tmp_path: Path) -> None:
    ids = ner(store)
    store.record_annotation("places", ids[0], "alice", [Entity("北京", "LOC", 3, 5), Entity("张三", "PER", 0, 2)])
    store.record_annotation("places", ids[2], "alice", [])
    snapshot = store.export("places", tmp_path / "spans.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [line["entities"] for line in lines] == [
        [{"text": "张三", "type": "PER", "start": 0, "end": 2}, {"text": "北京", "type": "LOC", "start": 3, "end": 5}],
        [],
    ]
    assert "label" not in lines[0]
    store.export("places", tmp_path / "spans.csv")
    frame = pd.read_csv(tmp_path / "spans.csv", dtype=str, keep_default_na=False)
    assert [json.loads(v) for v in frame["entities"]] == [line["entities"] for line in lines]
    assert snapshot.rows[0].entities == (Entity("张三", "PER", 0, 2), Entity("北京", "LOC", 3, 5))


def test_the_mlflow_dataset_carries_the_snapshot_digest(store: AnnotationStore) -> None:
    labelled(store)
    snapshot = store.label_snapshot("reviews")
    dataset = store.mlflow_dataset("reviews")
    assert (dataset.name, dataset.digest) == ("reviews-labels", snapshot.digest[:MLFLOW_DIGEST_CHARS])
    assert dataset.targets == "label" and dataset.profile["num_rows"] == len(snapshot.rows)
    pd.testing.assert_frame_equal(dataset.df, snapshot.frame())
    source = json.loads(dataset.to_dict()["source"])["tags"]
    assert source["openautoglm.project"] == "reviews" and source["openautoglm.annotation_store"] == store.url


# --- concurrent writers -----------------------------------------------------------------------------------------

PROCESSES = 4
PER_PROCESS = 50


def label_in_process(url: str, annotator: int, ready: Any, results: Any) -> None:
    """One annotator in its own process: adds the shared pool (all at once with the others) and ten rows of its
    own, then labels every shared row."""
    store = AnnotationStore(url)
    try:
        ready.wait(timeout=120)
        shared = store.add_items("race", [NewItem(text=f"共享评论 {i}", row_id=i) for i in range(PER_PROCESS)])
        own = store.add_items("race", [NewItem(text=f"第{annotator}位的评论 {i}") for i in range(10)])
        for i, item_id in enumerate(shared.ids):
            store.record_annotation("race", item_id, f"annotator-{annotator}", LABELS[(i + annotator) % 3], seconds=1)
        results.put((annotator, shared.added, own.added))
    finally:
        store.close()


def check_concurrent_labelling(url: str) -> None:
    """Four processes add the same pool and label it at once: every item is stored once and no answer is lost."""
    store = AnnotationStore(url)
    store.create_project(ProjectSpec(name="race", labels=LABELS))
    context = multiprocessing.get_context("spawn")
    ready, results = context.Barrier(PROCESSES), context.Queue()
    workers = [
        context.Process(target=label_in_process, args=(url, k, ready, results), daemon=True) for k in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    added = [results.get(timeout=10) for _ in workers]
    assert sum(shared for _, shared, _ in added) == PER_PROCESS  # each pool row added by exactly one process
    assert all(own == 10 for _, _, own in added)
    ids = {item.text: item.id for item in store.items("race")}
    expected = {
        (ids[f"共享评论 {i}"], f"annotator-{k}"): LABELS[(i + k) % 3]
        for i in range(PER_PROCESS)
        for k in range(PROCESSES)
    }
    stored = store.annotations("race")
    assert len(stored) == PROCESSES * PER_PROCESS
    assert {(a.item_id, a.annotator): a.label for a in stored} == expected
    assert Counter(a.seconds for a in stored) == {1.0: PROCESSES * PER_PROCESS}
    status = store.status("race")
    assert (status.items, status.labelled_items, status.annotations, status.annotators) == (
        PER_PROCESS + 10 * PROCESSES,
        PER_PROCESS,
        PROCESSES * PER_PROCESS,
        PROCESSES,
    )
    store.close()


@pytest.mark.slow
def test_four_processes_labelling_one_sqlite_file_lose_nothing(tmp_path: Path) -> None:
    check_concurrent_labelling(f"sqlite:///{tmp_path / 'race.db'}")


def test_a_lease_expires_and_skipped_items_are_stepped_over(store: AnnotationStore) -> None:
    ids = reviews(store)
    store.queue_items("reviews", 0, ids[:3], strategy="margin")
    assert [i.id for i in store.next_items("reviews", "alice", lease_s=0.2)] == [ids[0]]
    assert [i.id for i in store.next_items("reviews", "bob", exclude=[ids[1]])] == [ids[2]]
    time.sleep(0.3)
    assert [i.id for i in store.next_items("reviews", "carol", limit=3)] == [ids[0], ids[1]]  # alice's ran out


ASKERS = 6
ASKS = 5


def check_concurrent_next(url: str) -> None:
    """Six annotators (threads, one store each) ask ``next`` at the same moment and answer, five times over: no
    queued item is served to two of them, so none is answered twice."""
    import threading

    store = AnnotationStore(url)
    store.create_project(ProjectSpec(name="lease", labels=LABELS))
    store.add_items("lease", [NewItem(text=f"评论 {i}") for i in range(ASKERS * ASKS + 20)])
    ids = [item.id for item in store.items("lease") if not item.eval]
    assert len(ids) >= ASKERS * ASKS
    store.queue_items("lease", 0, ids, strategy="random", scores=[1.0] * len(ids))  # one score: every caller races
    ready = threading.Barrier(ASKERS)
    served: dict[str, list[int]] = {}
    failures: list[BaseException] = []

    def annotator(name: str) -> None:
        own = AnnotationStore(url)
        try:
            got: list[int] = []
            for _ in range(ASKS):
                ready.wait(timeout=60)
                (item,) = own.next_items("lease", name)
                got.append(item.id)
                own.record_annotation("lease", item.id, name, LABELS[0])
            served[name] = got
        except BaseException as error:  # the assertion below names it
            failures.append(error)
            ready.abort()
        finally:
            own.close()

    threads = [threading.Thread(target=annotator, args=(f"annotator-{k}",)) for k in range(ASKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    every = [i for got in served.values() for i in got]
    assert len(every) == ASKERS * ASKS and len(set(every)) == len(every), Counter(every).most_common(3)
    assert Counter(a.item_id for a in store.annotations("lease")).most_common(1)[0][1] == 1
    store.close()


def test_annotators_asking_at_once_are_served_different_items_on_sqlite(tmp_path: Path) -> None:
    check_concurrent_next(f"sqlite:///{tmp_path / 'lease.db'}")


def test_an_answer_is_taken_back_by_the_one_who_gave_it_only(store: AnnotationStore) -> None:
    ids = reviews(store)
    store.queue_items("reviews", 0, ids[:2], strategy="margin")
    store.record_annotation("reviews", ids[0], "alice", "正面", seconds=3)
    store.record_annotation("reviews", ids[0], "bob", "负面")
    store.record_annotation("reviews", ids[0], "rita", "负面", adjudicated=True)
    with pytest.raises(AnnotationNotFound, match="only by the one who gave it"):
        store.delete_annotation("reviews", ids[0], "carol")
    with pytest.raises(ItemNotFound):
        store.delete_annotation("reviews", 10_000, "alice")
    deleted = store.delete_annotation("reviews", ids[0], "rita")  # the adjudication, by its reviewer
    assert (deleted.label, deleted.adjudicated) == ("负面", True)
    assert store.delete_annotation("reviews", ids[0], "alice").seconds == 3
    assert [(a.annotator, a.label) for a in store.annotations("reviews")] == [("bob", "负面")]
    store.delete_annotation("reviews", ids[0], "bob")
    assert store.label_snapshot("reviews").rows == () and store.label_count("reviews") == 0
    # ids[0] went back to the first who undid an answer to it (rita); later undoers do not take her lease
    assert [i.id for i in store.next_items("reviews", "carol")] == [ids[1]]
    assert [i.id for i in store.next_items("reviews", "bob")] == []
    assert [i.id for i in store.next_items("reviews", "rita")] == [ids[0]]
