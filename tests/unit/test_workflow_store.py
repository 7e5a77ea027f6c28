"""The workflow store on a real SQLite file (and once on the machine's PostgreSQL): versions only on new content,
starters seeded once, latest-of-each listing, concurrent savers."""

from __future__ import annotations

import copy
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from openautoglm.adapters.workflow_store import STARTERS, WorkflowNotFound, WorkflowStore
from openautoglm.core.workflow_file import WorkflowFile, content_hash, load_workflow
from tests.conftest import EXAMPLES, require_service


def starter(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / "workflows" / f"{name}.json").read_text(encoding="utf-8"))
    return data


def moved(file: WorkflowFile, x: float) -> WorkflowFile:
    data = file.model_dump(mode="json")
    data["layout"]["load"] = {"x": x, "y": 0}
    return load_workflow(data)


def exercise(store: WorkflowStore) -> None:
    file = load_workflow({**starter("ingest"), "name": "mine"})
    first = store.save(file, "alice")
    assert (first.stored.version, first.unchanged, first.stored.author) == (1, False, "alice")
    again = store.save(load_workflow(copy.deepcopy(file.model_dump(mode="json"))), "bob")
    assert again.unchanged and again.stored.version == 1 and again.stored.author == "alice"
    second = store.save(moved(file, 500), "bob")
    assert (second.stored.version, second.unchanged) == (2, False)
    assert second.stored.logic_hash == first.stored.logic_hash and second.stored.hash != first.stored.hash
    assert store.get("mine").version == 2 and store.get("mine", 1).file == file
    assert store.get("mine", 1).hash == content_hash(file)
    assert [v.version for v in store.versions("mine")] == [2, 1]
    listed = {v.name: v.version for v in store.list()}
    assert listed["mine"] == 2
    with pytest.raises(WorkflowNotFound, match="no version 9"):
        store.get("mine", 9)
    with pytest.raises(WorkflowNotFound, match="No workflow named 'nope'"):
        store.get("nope")
    with pytest.raises(WorkflowNotFound):
        store.versions("nope")


def test_sqlite_store_versions_and_seeds(tmp_path: Path) -> None:
    store = WorkflowStore(f"sqlite:///{tmp_path / 'deep' / 'workflows.db'}")
    names = {v.name for v in store.list()}
    assert (
        names
        == {p.stem for p in STARTERS.glob("*.json")}
        == {
            "graph-karate",
            "ingest",
            "matching",
            "ner",
            "optimize-prompt",
            "run-task",
            "seed-classification",
        }
    )
    assert {v.author for v in store.list()} == {"openautoglm"}
    exercise(store)
    store.close()
    # a second store on the same file seeds nothing again; a changed starter is not re-added either
    reopened = WorkflowStore(f"sqlite:///{tmp_path / 'deep' / 'workflows.db'}")
    assert [v.version for v in reopened.versions("ingest")] == [1]
    assert reopened.get("mine").version == 2


def test_stores_seeding_one_database_at_once_seed_each_starter_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    stores = [WorkflowStore(url) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        listed = list(pool.map(lambda store: store.list(), stores))
    assert all(len(found) == len(list(STARTERS.glob("*.json"))) for found in listed)
    assert [v.version for v in stores[0].versions("ingest")] == [1]


def test_a_broken_starter_is_skipped(tmp_path: Path) -> None:
    starters = tmp_path / "starters"
    starters.mkdir()
    (starters / "bad.json").write_text("{not json", encoding="utf-8")
    (starters / "ok.json").write_text(json.dumps({**starter("ingest"), "name": "ok"}), encoding="utf-8")
    store = WorkflowStore(f"sqlite:///{tmp_path / 'w.db'}", starters=starters)
    assert [v.name for v in store.list()] == ["ok"]


def test_concurrent_saves_get_distinct_versions(tmp_path: Path) -> None:
    store = WorkflowStore(f"sqlite:///{tmp_path / 'w.db'}", starters=None)
    base = load_workflow({**starter("ingest"), "name": "race"})
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: store.save(moved(base, float(i)), f"u{i}"), range(8)))
    assert sorted(r.stored.version for r in results) == list(range(1, 9))
    assert [v.version for v in store.versions("race")] == list(range(8, 0, -1))


@pytest.mark.integration
def test_postgres_store() -> None:
    require_service("postgresql", "127.0.0.1", 5432)
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    store = WorkflowStore("postgresql+psycopg://postgres@127.0.0.1:5432/test", table_prefix=prefix, starters=None)
    try:
        assert store.list() == []
        exercise(store)
    finally:
        store.table.drop(store.engine, checkfirst=True)
        store.close()
