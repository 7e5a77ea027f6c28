"""Where the pipeline flow keeps a node's result (issue 33, re-run from a node): the key is scoped by the run's owner
and workflow and by the run it re-runs (else its own), not by other tags; old kept results are pruned, others kept."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from openautoglm.flows import pipeline_params
from openautoglm.flows.pipeline_params import KEPT_PREFIX, kept_key, prune_kept_results

RUN = "11111111-1111-4111-8111-111111111111"
FIRST = "22222222-2222-4222-8222-222222222222"
OLGA = ["openautoglm-owner:olga", "openautoglm-workflow:seed", "openautoglm-api", "openautoglm-workflow-version:3"]


def key(monkeypatch: pytest.MonkeyPatch, tags: list[str], reuse: str | None = None, run: str = RUN) -> str:
    monkeypatch.setattr(pipeline_params, "flow_run", SimpleNamespace(id=run, tags=tags))
    return kept_key("lineage-a", reuse)


def test_the_key_is_scoped_by_owner_workflow_and_the_reused_run(monkeypatch: pytest.MonkeyPatch) -> None:
    base = key(monkeypatch, OLGA, FIRST)
    assert base.startswith(KEPT_PREFIX)
    # another version of the same workflow, other tags, another flow run re-running the same first run: the same key
    assert key(monkeypatch, [*OLGA[:2], "openautoglm-workflow-version:4"], FIRST, run=FIRST) == base
    ivan = ["openautoglm-owner:ivan", *OLGA[1:]]
    assert key(monkeypatch, ivan, FIRST) != base  # another owner never reads olga's results
    assert key(monkeypatch, [OLGA[0], "openautoglm-workflow:ner"], FIRST) != base  # nor another workflow
    assert key(monkeypatch, OLGA) != base  # no reuse: the run's own (a retry of it)
    assert key(monkeypatch, OLGA, run=FIRST) == base  # ... which is what a re-run of it finds


def test_prune_removes_only_old_kept_results(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from prefect import results
    from prefect.filesystems import LocalFileSystem

    monkeypatch.setattr(results, "get_default_result_storage", lambda: LocalFileSystem(basepath=str(tmp_path)))
    old, new, other = tmp_path / f"{KEPT_PREFIX}old", tmp_path / f"{KEPT_PREFIX}new", tmp_path / "someone-else"
    for path in (old, new, other):
        path.write_text("x")
    day_ago = time.time() - 86400
    os.utime(old, (day_ago, day_ago))
    os.utime(other, (day_ago, day_ago))
    assert prune_kept_results(3600) == 1
    assert not old.exists() and new.exists() and other.exists()
