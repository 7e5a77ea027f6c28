"""The annotation store on the machine's PostgreSQL (a fresh database per test): the whole round trip, four
processes labelling at once, and the label snapshot logged to an MLflow run (tracking on a temp SQLite)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from openautoglm.adapters.annotation_store import (
    AnnotationStore,
    InvalidAnswer,
    NewItem,
    NewPrediction,
    ProjectExists,
    ProjectSpec,
)
from openautoglm.core.nlp.types import Entity
from openautoglm.settings import Settings
from tests.conftest import require_service
from tests.integration.servers import postgres_database
from tests.unit.test_annotation_store import LABELS, REVIEWS, check_concurrent_labelling, check_concurrent_next

pytestmark = pytest.mark.integration


@pytest.fixture
def url() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database (dropped afterwards)."""
    require_service("postgresql", "127.0.0.1", 5432)
    with postgres_database() as name:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def test_the_store_round_trip_on_postgresql(url: str, tmp_path: Path) -> None:
    store = AnnotationStore(url)
    store.create_project(ProjectSpec(name="reviews", labels=LABELS))
    store.create_project(ProjectSpec(name="places", task_type="ner", entity_types=("PER", "LOC")))
    with pytest.raises(ProjectExists):
        store.create_project(ProjectSpec(name="reviews", labels=("a", "b")))
    added = store.add_items("reviews", [NewItem(text=t, row_id=i) for i, t in enumerate(REVIEWS)])
    again = store.add_items("reviews", [NewItem(text=t) for t in REVIEWS[:2]])
    assert (added.added, again.added, again.duplicates, again.ids) == (5, 0, 2, added.ids[:2])
    ids = added.ids
    store.add_predictions(
        "reviews",
        [NewPrediction(item_id=i, label="正面", scores={"正面": 0.7, "负面": 0.2, "中性": 0.1}) for i in ids],
        round=0,
        model="local-auto",
    )
    assert [p.margin for p in store.predictions("reviews")] == pytest.approx([0.5] * 5)
    first = store.record_annotation("reviews", ids[0], "alice", "负面", seconds=3)
    time.sleep(0.01)
    second = store.record_annotation("reviews", ids[0], "alice", "正面", seconds=2)
    assert (second.id, second.seconds, second.created_at) == (first.id, 5.0, first.created_at)
    assert second.updated_at > first.updated_at
    store.record_annotation("reviews", ids[1], "bob", "中性")
    with pytest.raises(InvalidAnswer):
        store.record_annotation("reviews", ids[1], "bob", "好评")
    queued = store.queue_items("reviews", 0, [ids[3], ids[0], ids[1], ids[2]], strategy="margin", scores=[3, 2, 1, 0])
    assert queued == 4 and store.queue_items("reviews", 0, [ids[3]], strategy="margin") == 0
    assert [i.id for i in store.next_items("reviews", "alice", limit=3)] == [ids[3], ids[2]]  # answered ones left out
    (span_item,) = store.add_items("places", [NewItem(text="张三在北京工作")]).ids
    store.record_annotation("places", span_item, "alice", [Entity("北京", "LOC", 3, 5), Entity("张三", "PER", 0, 2)])
    assert store.label_snapshot("places").rows[0].entities == (Entity("张三", "PER", 0, 2), Entity("北京", "LOC", 3, 5))

    # the same labels in SQLite give the same snapshot digest and the same export
    local = AnnotationStore(f"sqlite:///{tmp_path / 'same.db'}")
    local.create_project(ProjectSpec(name="reviews", labels=LABELS))
    local_ids = local.add_items("reviews", [NewItem(text=t, row_id=i) for i, t in enumerate(REVIEWS)]).ids
    local.record_annotation("reviews", local_ids[1], "carol", "中性")
    local.record_annotation("reviews", local_ids[0], "carol", "正面")
    assert local.label_snapshot("reviews").digest == store.label_snapshot("reviews").digest
    store.export("reviews", tmp_path / "pg.jsonl")
    local.export("reviews", tmp_path / "sqlite.jsonl")
    assert (tmp_path / "pg.jsonl").read_text(encoding="utf-8") == (tmp_path / "sqlite.jsonl").read_text(
        encoding="utf-8"
    )
    status = store.status("reviews")
    assert (status.items, status.labelled_items, status.annotations, status.annotators) == (5, 2, 2, 2)
    with sa.create_engine(url).connect() as conn:  # the tables and their unique keys are really there
        names = set(sa.inspect(conn).get_table_names())
    assert {"openautoglm_annotation_projects", "openautoglm_annotation_items", "openautoglm_annotations"} <= names
    local.close()
    store.close()


@pytest.mark.slow
def test_four_processes_labelling_on_postgresql_lose_nothing(url: str) -> None:
    check_concurrent_labelling(url)


@pytest.mark.slow
def test_the_label_snapshot_is_logged_to_an_mlflow_run(url: str, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from openautoglm.adapters.tracking import tracked_run

    store = AnnotationStore(url)
    store.create_project(ProjectSpec(name="reviews", labels=LABELS))
    ids = store.add_items("reviews", [NewItem(text=t) for t in REVIEWS]).ids
    for item_id, label in zip(ids, ("正面", "负面", "中性"), strict=False):
        store.record_annotation("reviews", item_id, "alice", label)
    snapshot = store.label_snapshot("reviews")
    settings = Settings(home=tmp_path / "home")
    with tracked_run("annotation-test", "round-1", settings=settings) as run:
        dataset = store.mlflow_dataset("reviews", run_id=run.run_id, tracking_uri=run.tracking_uri)
    (logged,) = MlflowClient(settings.tracking_uri).get_run(run.run_id).inputs.dataset_inputs
    tags = {t.key: t.value for t in logged.tags}
    assert (logged.dataset.name, logged.dataset.digest) == ("reviews-labels", dataset.digest)
    assert snapshot.digest.startswith(logged.dataset.digest)
    assert tags["label_digest"] == snapshot.digest and tags["mlflow.data.context"] == "training"
    assert tags["labelled_items"] == "3" and "postgres@127.0.0.1" in logged.dataset.source
    store.close()


def test_annotators_asking_at_once_are_served_different_items_on_postgresql(url: str) -> None:
    check_concurrent_next(url)
