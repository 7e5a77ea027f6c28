"""Re-run from a node (issue 33, Deliver 5): change one parameter of the seed classification starter's infer node,
run again from the earlier run (``from_run``); the nodes upstream of it come back from the cache (task runs in
state ``Cached``, their bodies not run), infer and what follows run, and the answer is the new
one. On the warm executor, as the README recipe runs the canvas."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_canvas_warm import SIGNER, api, finished

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UPSTREAM = {"load", "clean", "validate"}
DOWNSTREAM = {"infer", "evaluate", "write-results"}
__all__ = ["api"]  # the warm executor's API fixture (a pipeline deployment only it runs), shared


def auth(sub: str = "olga") -> dict[str, str]:
    return {"Authorization": f"Bearer {SIGNER.token(sub, ['operator'])}"}


def run(api: TestClient, body: dict[str, Any] | None = None, name: str = "rerun") -> tuple[dict[str, Any], float]:
    """Run the workflow ``name`` (``body``: the run request) and wait until it completes; (its state, seconds: from
    the request to the poll that saw it completed, polled every 0.25 s)."""
    started = time.monotonic()
    created = api.post(f"/api/v1/workflows/{name}/runs", json=body, headers=auth())
    assert created.status_code == 200, created.text
    data = finished(api, created.json()["data"]["id"])
    errors = {n: v["error"] for n, v in data["nodes"].items() if v["error"]}
    assert data["run"]["state"] == "COMPLETED", (data["run"]["message"], errors)
    return data, time.monotonic() - started


def test_a_rerun_from_a_changed_infer_node_reuses_the_upstream_nodes(api: TestClient) -> None:
    from prefect.client.orchestration import get_client

    file = copy.deepcopy(api.get("/api/v1/workflows/seed-classification", headers=auth()).json()["data"]["workflow"])
    file["name"] = "rerun"
    assert api.put("/api/v1/workflows/rerun", json=file, headers=auth()).status_code == 200
    first, first_s = run(api)
    assert all(n["state_name"] == "Completed" for n in first["nodes"].values()), first["nodes"]
    accuracy = first["nodes"]["evaluate"]["summary"]["outputs"]["metrics"]["accuracy"]

    infer = next(n for n in file["graph"]["nodes"] if n["id"] == "infer")
    infer["params"]["model"]["model"] = "local-use"  # one parameter of infer (37% right on this file, not 90%)
    assert api.put("/api/v1/workflows/rerun", json=file, headers=auth()).status_code == 200
    again, again_s = run(api, {"from_run": first["run"]["id"]})

    nodes = again["nodes"]
    assert {n for n, v in nodes.items() if v["state_name"] == "Cached"} == UPSTREAM, nodes
    assert all(nodes[n]["state_name"] == "Completed" for n in DOWNSTREAM), nodes
    assert all(v["state"] == "COMPLETED" and v["summary"] is not None for v in nodes.values()), nodes
    assert nodes["validate"]["summary"]["rows_out"] == first["nodes"]["validate"]["summary"]["rows_out"]
    changed = nodes["evaluate"]["summary"]["outputs"]["metrics"]["accuracy"]
    assert changed != accuracy and changed < 0.6, (accuracy, changed)
    with get_client(sync_client=True) as client:  # one task run per node; the upstream ones from the cache
        task_runs = [t for t in client.read_task_runs() if str(t.flow_run_id) == again["run"]["id"]]
    assert sorted(t.name for t in task_runs) == sorted(nodes)
    assert all(t.state.name == "Cached" for t in task_runs if t.name in UPSTREAM)

    # A re-run of the re-run still finds the first run's results: infer's template changed on the warm local-auto
    # (the usual tweak: no model to load) runs infer and what follows only ...
    infer["params"]["model"]["model"] = "local-auto"
    template = infer["params"]["task"]["prompt_template"]
    infer["params"]["task"]["prompt_template"] = "这条用户反馈的情感是正面、负面还是中性?{text}"
    assert api.put("/api/v1/workflows/rerun", json=file, headers=auth()).status_code == 200
    tweaked, tweaked_s = run(api, {"from_run": again["run"]["id"]})
    assert {n for n, v in tweaked["nodes"].items() if v["state_name"] == "Cached"} == UPSTREAM, tweaked["nodes"]
    # ... and back to the first run's parameters, every node is the first run's, kept: all Cached, same answer.
    infer["params"]["task"]["prompt_template"] = template
    assert api.put("/api/v1/workflows/rerun", json=file, headers=auth()).status_code == 200
    third, third_s = run(api, {"from_run": tweaked["run"]["id"]})
    assert {n for n, v in third["nodes"].items() if v["state_name"] == "Cached"} == set(third["nodes"])
    assert third["nodes"]["evaluate"]["summary"]["outputs"]["metrics"]["accuracy"] == accuracy
    print(
        f"canvas re-run from infer: first run {first_s:.1f} s; re-runs: model changed (loads local-use) "
        f"{again_s:.1f} s, template changed (warm local-auto) {tweaked_s:.1f} s, nothing changed {third_s:.1f} s"
    )
    for label, data in (("model changed", again), ("template changed", tweaked)):
        spans = {n: span(v) for n, v in data["nodes"].items()}
        print(f"{label}: flow run {span(data['run'])}; nodes {spans}")


def span(state: dict[str, Any]) -> str:
    """``start -> end`` (seconds of the minute, to read where a run's time goes)."""
    return f"{(state.get('start_time') or '')[17:23]} -> {(state.get('end_time') or '')[17:23]}"


def test_a_rerun_from_another_users_run_is_404_and_a_plain_run_reuses_nothing(api: TestClient) -> None:
    created = api.post("/api/v1/workflows/seed-classification/runs", headers=auth())
    assert created.status_code == 200, created.text
    earlier = finished(api, created.json()["data"]["id"])
    other = api.post(
        "/api/v1/workflows/seed-classification/runs", json={"from_run": earlier["run"]["id"]}, headers=auth("ivan")
    )
    assert other.status_code == 404, other.text
    bad = api.post("/api/v1/workflows/seed-classification/runs", json={"from_run": "x"}, headers=auth())
    assert bad.status_code == 422, bad.text
    plain, _ = run(api, name="seed-classification")
    assert not [n for n, v in plain["nodes"].items() if v["state_name"] == "Cached"], plain["nodes"]
