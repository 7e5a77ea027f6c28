"""The warm executor (issue 33): with OPENAUTOGLM_SERVE_WORKFLOW_EXECUTOR=warm a canvas run is run at once by the
API's long-lived executor process — no worker runs here — and is still a flow run of the pipeline deployment with
one task run per node; a failed node's state says its error and what to do in the page's terms."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openautoglm.serve.app import create_app
from openautoglm.serve.testing import Signer
from tests.canvas_settings import canvas_settings
from tests.conftest import EXAMPLES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIGNER = Signer.ec("canvas-warm")
DEPLOYMENT = "warm-test"


async def _deploy_pipeline() -> None:
    """The pipeline flow's deployment with no work pool: nothing but the warm executor can run its flow runs."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        flow_id = await client.create_flow_from_name("pipeline")
        await client.create_deployment(flow_id=flow_id, name=DEPLOYMENT, parameters={})


@pytest.fixture
def api(prefect_server: None, tmp_path: Path) -> Iterator[TestClient]:
    asyncio.run(_deploy_pipeline())
    settings = canvas_settings(tmp_path, SIGNER, workflow_deployment=f"pipeline/{DEPLOYMENT}", workflow_executor="warm")
    with TestClient(create_app(settings)) as client:
        yield client


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {SIGNER.token('olga', ['operator'])}"}


def finished(api: TestClient, run_id: str, timeout_s: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        data: dict[str, Any] = api.get(f"/api/v1/workflow-runs/{run_id}", headers=auth()).json()["data"]
        if data["run"]["state"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return data
        time.sleep(0.25)
    raise AssertionError(f"flow run {run_id} did not finish in {timeout_s} s: {data}")


def test_a_canvas_run_runs_on_the_warm_executor_as_a_flow_run_with_a_task_run_per_node(api: TestClient) -> None:
    from prefect.client.orchestration import get_client

    seconds = []
    for _ in range(2):  # the second run finds the process and its models warm
        started = time.monotonic()
        created = api.post("/api/v1/workflows/seed-classification/runs", headers=auth())
        assert created.status_code == 200, created.text
        run = finished(api, created.json()["data"]["id"])
        seconds.append(time.monotonic() - started)
        assert run["run"]["state"] == "COMPLETED", run["run"]
        nodes = run["nodes"]
        assert set(nodes) == {"load", "clean", "validate", "infer", "evaluate", "write-results"}
        assert all(n["state"] == "COMPLETED" and n["error"] is None for n in nodes.values()), nodes
        assert nodes["evaluate"]["summary"]["outputs"]["metrics"]["accuracy"] >= 0.85
    # The node's log lines: the engine sends them in batches, so they may trail its state by a second or two.
    deadline, logs = time.monotonic() + 30, []
    while not logs and time.monotonic() < deadline:
        time.sleep(0.5)
        logs = api.get(f"/api/v1/workflow-runs/{run['run']['id']}", headers=auth()).json()["data"]["nodes"]["infer"]
        logs = logs["logs"]
    assert logs and all(set(line) == {"time", "level", "message"} and "\n" not in line["message"] for line in logs)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(created.json()["data"]["id"])
        deployment = client.read_deployment(flow_run.deployment_id)
        task_runs = client.read_task_runs()
    assert deployment.name == DEPLOYMENT and "openautoglm-workflow:seed-classification" in flow_run.tags
    assert sorted(t.name for t in task_runs if t.flow_run_id == flow_run.id) == sorted(nodes)
    print(f"warm canvas runs, Run -> every node completed: {[round(s, 1) for s in seconds]} s")


def test_a_failed_node_says_what_to_do_in_the_pages_terms(api: TestClient) -> None:
    file = json.loads((EXAMPLES / "workflows" / "ingest.json").read_text(encoding="utf-8"))
    strict = copy.deepcopy(file)
    strict["name"] = "strict"
    validate = next(n for n in strict["graph"]["nodes"] if n["id"] == "validate")
    validate["params"]["gate"] = "fail"  # the dirty file's planted rows fail the run
    assert api.put("/api/v1/workflows/strict", json=strict, headers=auth()).status_code == 200
    created = api.post("/api/v1/workflows/strict/runs", headers=auth())
    assert created.status_code == 200, created.text
    run = finished(api, created.json()["data"]["id"])
    failed = run["nodes"]["validate"]
    assert failed["state"] == "FAILED" and failed["error"] is not None, run
    assert "\n" not in failed["error"]["message"] and "Traceback" not in failed["error"]["message"]
    assert "set this node's 'gate' to quarantine" in failed["error"]["what_to_do"]
    assert "--" not in failed["error"]["what_to_do"]
    assert run["nodes"]["load"]["error"] is None and run["nodes"]["write"]["state"] != "COMPLETED"
