"""Saved workflows against the session's Prefect server (the test harness): an exported workflow run with
`python exported.py` gives the pipeline flow's summary; a workflow run through the API is a flow run of the
pipeline deployment tagged with the workflow and version; the workflow-run route shows each node's state and
summary, to its owner only; a workflow's schedule belongs to whoever set it."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openautoglm.core.workflow_codegen import export_code
from openautoglm.core.workflow_file import load_workflow
from openautoglm.serve import confine
from openautoglm.serve.app import create_app
from openautoglm.serve.settings import ServeSettings
from openautoglm.serve.testing import Signer, keys_json
from openautoglm.stages import export_stages
from tests.conftest import EXAMPLES, REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIGNER = Signer.ec("wf-int")


def ingest_file() -> Any:
    data = json.loads((EXAMPLES / "workflows" / "ingest.json").read_text(encoding="utf-8"))
    data["graph"]["nodes"][0]["params"]["source"]["path"] = str(EXAMPLES / "user_feedback_dirty.csv")
    return load_workflow(data)


def without_folder(value: Any, folder: Path) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False).replace(str(folder), "<folder>"))


def test_exported_code_gives_the_pipeline_flows_summary(prefect_server: None, tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    from openautoglm.flows.pipeline import PipelineParams, pipeline

    file = ingest_file()
    expected = pipeline(PipelineParams(graph=file.graph, output_dir=tmp_path / "flow"))
    script = tmp_path / "ingest.py"
    script.write_text(export_code(file, export_stages()), encoding="utf-8")
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "OPENAUTOGLM_TASK_RUNNER": "threads"}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "exported")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "exported" / "summary.json").read_text(encoding="utf-8"))
    assert summary["order"] == expected.order == ["load", "clean", "validate", "write"]
    assert without_folder(summary["outputs"], tmp_path / "exported") == without_folder(
        expected.outputs, tmp_path / "flow"
    )
    assert summary["outputs"]["write"]["files"]["rows"] == 59
    assert (tmp_path / "exported" / "data.parquet").read_bytes() == (tmp_path / "flow" / "data.parquet").read_bytes()


@pytest.fixture
def api(prefect_server: None, tmp_path: Path) -> Iterator[TestClient]:
    settings = ServeSettings(
        classify_model="serve-fake",
        ner_model="serve-fake",
        match_model="serve-fake",
        preload=False,
        jwt_keys=keys_json(SIGNER),
        rate_limit="10000/minute",
        workflows_url=f"sqlite:///{tmp_path / 'workflows.db'}",
        workflow_deployment="pipeline/workflow-test",
        jobs_deployments=("run_task/only-this",),  # the workflow deployment is the server's, not in this list
        data_roots=(EXAMPLES,),
    )
    with TestClient(create_app(settings)) as client:
        yield client


def auth(sub: str, role: str = "operator") -> dict[str, str]:
    return {"Authorization": f"Bearer {SIGNER.token(sub, [role])}"}


async def _deploy_pipeline() -> None:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        flow_id = await client.create_flow_from_name("pipeline")
        await client.create_deployment(flow_id=flow_id, name="workflow-test", parameters={})


def test_a_workflow_run_is_a_tagged_pipeline_run_and_shows_its_nodes(
    api: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client

    from openautoglm.flows.pipeline import PipelineParams, pipeline
    from openautoglm.serve.auth import Principal

    asyncio.run(_deploy_pipeline())
    file = ingest_file().model_dump(mode="json")
    file["name"] = "dirty"
    assert api.put("/api/v1/workflows/dirty", json=file, headers=auth("olga")).status_code == 200
    outside = copy.deepcopy(file)
    outside["name"] = "outside"
    outside["graph"]["nodes"][0]["params"]["source"]["path"] = "/etc/passwd"
    refused = api.put("/api/v1/workflows/outside", json=outside, headers=auth("olga"))  # Save refuses what Run would
    assert refused.status_code == 422, refused.text
    assert refused.json()["data"]["errors"][0]["node"] == "load" and "outside the data roots" in refused.text
    created = api.post("/api/v1/workflows/dirty/runs", json={"version": 1}, headers=auth("olga"))
    assert created.status_code == 200, created.text
    job = created.json()["data"]
    assert job["state"] == "SCHEDULED"
    assert job["parameters"]["params"]["graph"]["nodes"][0]["id"] == "load"
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(job["id"])
    assert {"openautoglm-workflow:dirty", "openautoglm-workflow-version:1", "openautoglm-api"} <= set(run.tags)
    assert 'openautoglm_jobs_triggered_total{deployment="pipeline/workflow-test"} 1.0' in api.get("/metrics").text

    waiting = api.get(f"/api/v1/workflow-runs/{job['id']}", headers=auth("olga"))
    assert waiting.status_code == 200, waiting.text
    nodes = waiting.json()["data"]["nodes"]
    assert list(nodes) == ["load", "clean", "validate", "write"]
    assert {n["state"] for n in nodes.values()} == {"PENDING"} and nodes["load"]["task_run_id"] is None
    other = api.get(f"/api/v1/workflow-runs/{job['id']}", headers=auth("pavel"))
    assert other.status_code == 404 and other.json()["message"] == "no such job"
    assert api.get(f"/api/v1/workflow-runs/{job['id']}", headers=auth("root", "admin")).status_code == 200

    # A run that really ran (in-process here, as a worker would): each node's task run and its summary.
    ran = ingest_file().graph.model_copy(deep=True)  # as the API sends it: the path resolved under a data root
    ran.nodes[0].params["source"]["path"] = str(EXAMPLES / "user_feedback_dirty.csv")
    result = pipeline(PipelineParams(graph=ran, output_dir=tmp_path / "ran"))
    owner = Principal(sub="olga", iss="openautoglm", roles=frozenset({"operator"})).owner
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(result.flow_run_id)
        client.update_flow_run(result.flow_run_id, tags=[*flow_run.tags, f"openautoglm-owner:{owner}"])
    shown = api.get(f"/api/v1/workflow-runs/{result.flow_run_id}", headers=auth("olga"))
    assert shown.status_code == 200, shown.text
    view = shown.json()["data"]
    assert view["run"]["state"] == "COMPLETED"
    for node_id, node in view["nodes"].items():
        assert node["state"] == "COMPLETED" and node["task_run_id"], (node_id, node)
        assert node["start_time"] and node["end_time"]
    summary = view["nodes"]["validate"]["summary"]
    assert summary is not None and summary["outputs"]["dataset"]["rows_quarantined"] == 7, summary
    assert view["nodes"]["write"]["summary"]["outputs"]["files"]["rows"] == 59
    # The first rows of each output (its file lies under the data roots), and the links to Prefect and MLflow.
    clean = view["nodes"]["clean"]["summary"]
    assert clean["rows_in"] == view["nodes"]["load"]["summary"]["rows_out"] and clean["rows_out"] <= clean["rows_in"]
    assert len(view["nodes"]["clean"]["summary"]["preview"]["dataset"]) == 5
    assert view["links"]["mlflow"] and view["links"]["mlflow"].startswith("http")
    assert view["nodes"]["load"]["mlflow_url"] == view["links"]["mlflow"]
    # Rows read from files outside the data roots are shown to admins only.
    monkeypatch.setattr(confine, "may_read_rows", lambda *args: False)
    hidden = api.get(f"/api/v1/workflow-runs/{result.flow_run_id}", headers=auth("olga")).json()["data"]
    assert "preview" not in hidden["nodes"]["clean"]["summary"] and hidden["nodes"]["clean"]["summary"]["rows_out"]
    admin = api.get(f"/api/v1/workflow-runs/{result.flow_run_id}", headers=auth("root", "admin")).json()["data"]
    assert admin["nodes"]["clean"]["summary"]["preview"]["dataset"]


def test_a_schedule_is_the_workflows_own_deployment_with_a_cron(api: TestClient) -> None:
    from prefect.client.orchestration import get_client

    asyncio.run(_deploy_pipeline())
    file = ingest_file().model_dump(mode="json")
    file["name"] = "nightly"
    assert api.put("/api/v1/workflows/nightly", json=file, headers=auth("olga")).status_code == 200
    assert api.get("/api/v1/workflows/nightly/schedule", headers=auth("vera", "viewer")).json()["data"] is None

    set_ = api.put(
        "/api/v1/workflows/nightly/schedule",
        json={"cron": "0 2 * * *", "timezone": "Asia/Shanghai"},
        headers=auth("olga"),
    )
    assert set_.status_code == 200, set_.text
    schedule = set_.json()["data"]
    assert schedule["deployment"] == "pipeline/wf-nightly" and schedule["cron"] == "0 2 * * *"
    assert schedule["timezone"] == "Asia/Shanghai" and schedule["active"] is True and schedule["version"] == 1
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("pipeline/wf-nightly")
    graph = deployment.parameters["params"]["graph"]
    assert graph["nodes"][0]["params"]["source"]["path"] == str((EXAMPLES / "user_feedback_dirty.csv").resolve())
    assert {"openautoglm-workflow:nightly", "openautoglm-workflow-version:1"} <= set(deployment.tags)
    # Set again: the same deployment, one schedule, the new cron.
    again = api.put("/api/v1/workflows/nightly/schedule", json={"cron": "30 3 * * 1"}, headers=auth("olga"))
    assert again.json()["data"]["deployment_id"] == schedule["deployment_id"]
    with get_client(sync_client=True) as client:
        schedules = client.read_deployment_by_name("pipeline/wf-nightly").schedules
    assert [s.schedule.cron for s in schedules] == ["30 3 * * 1"]
    assert api.get("/api/v1/workflows/nightly/schedule", headers=auth("olga")).json()["data"]["cron"] == "30 3 * * 1"
    assert api.get("/api/v1/workflows/nightly/schedule", headers=auth("vera", "viewer")).status_code == 404  # olga's

    bad = api.put("/api/v1/workflows/nightly/schedule", json={"cron": "61 * * * *"}, headers=auth("olga"))
    assert bad.status_code == 422 and "schedule" in bad.json()["message"], bad.text
    zone = api.put(
        "/api/v1/workflows/nightly/schedule", json={"cron": "0 2 * * *", "timezone": "Mars/Base"}, headers=auth("olga")
    )
    assert zone.status_code == 422, zone.text
    outside = copy.deepcopy(file)
    outside["graph"]["nodes"][0]["params"]["source"]["path"] = "/etc/passwd"
    assert api.put("/api/v1/workflows/nightly", json=outside, headers=auth("olga")).status_code == 422
    # A version saved when the data roots were others (straight into the store) is still confined when scheduled.
    api.app.state.workflows.save(load_workflow(outside), "olga")  # type: ignore[attr-defined]
    refused = api.put("/api/v1/workflows/nightly/schedule", json={"cron": "0 2 * * *"}, headers=auth("olga"))
    assert refused.status_code == 422 and refused.json()["data"]["errors"][0]["node"] == "load", refused.text
    assert (
        api.put(
            "/api/v1/workflows/nightly/schedule", json={"cron": "0 2 * * *"}, headers=auth("vera", "viewer")
        ).status_code
        == 403
    )

    assert api.delete("/api/v1/workflows/nightly/schedule", headers=auth("olga")).status_code == 200
    assert api.get("/api/v1/workflows/nightly/schedule", headers=auth("olga")).json()["data"] is None


def test_a_schedule_belongs_to_whoever_set_it(api: TestClient) -> None:
    """A schedule is owned as a job is (the owner tag on its deployment): another operator can neither read,
    replace nor delete it (404); an admin can do all three, and an admin's change leaves it with its owner."""
    from prefect.client.orchestration import get_client

    from openautoglm.serve.auth import Principal

    asyncio.run(_deploy_pipeline())
    file = ingest_file().model_dump(mode="json")
    for name in ("olgas", "roots"):
        file["name"] = name
        assert api.put(f"/api/v1/workflows/{name}", json=file, headers=auth("olga")).status_code == 200

    def owner_tags(name: str) -> list[str]:
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name(f"pipeline/wf-{name}")
        return [t for t in deployment.tags if t.startswith("openautoglm-owner:")]

    def owner(sub: str, role: str) -> str:
        return "openautoglm-owner:" + Principal(sub=sub, iss="openautoglm", roles=frozenset({role})).owner

    olgas = "/api/v1/workflows/olgas/schedule"
    assert api.put(olgas, json={"cron": "0 2 * * *"}, headers=auth("olga")).status_code == 200
    assert owner_tags("olgas") == [owner("olga", "operator")]
    for method, body in (("GET", None), ("PUT", {"cron": "* * * * *"}), ("DELETE", None)):
        refused = api.request(method, olgas, json=body, headers=auth("pavel"))
        assert refused.status_code == 404, (method, refused.text)
        assert refused.json()["message"].startswith("workflow 'olgas' is scheduled by another user"), refused.text
    kept = api.get(olgas, headers=auth("olga")).json()["data"]
    assert kept["cron"] == "0 2 * * *" and owner_tags("olgas") == [owner("olga", "operator")]
    # An admin reads and replaces it; it stays olga's (its runs are her jobs), and she still manages it.
    assert api.get(olgas, headers=auth("root", "admin")).json()["data"]["cron"] == "0 2 * * *"
    replaced = api.put(olgas, json={"cron": "0 4 * * *"}, headers=auth("root", "admin"))
    assert replaced.status_code == 200 and replaced.json()["data"]["cron"] == "0 4 * * *", replaced.text
    assert owner_tags("olgas") == [owner("olga", "operator")]
    assert api.get(olgas, headers=auth("olga")).json()["data"]["cron"] == "0 4 * * *"

    # The finding: an operator deleted an admin's schedule. The admin's is out of the operator's reach now.
    roots = "/api/v1/workflows/roots/schedule"
    assert api.put(roots, json={"cron": "0 3 * * *"}, headers=auth("root", "admin")).status_code == 200
    assert api.delete(roots, headers=auth("olga")).status_code == 404
    assert api.put(roots, json={"cron": "* * * * *"}, headers=auth("olga")).status_code == 404
    assert api.get(roots, headers=auth("root", "admin")).json()["data"]["cron"] == "0 3 * * *"
    assert owner_tags("roots") == [owner("root", "admin")]

    assert api.delete(olgas, headers=auth("olga")).status_code == 200  # her own
    assert api.get(olgas, headers=auth("olga")).json()["data"] is None
    assert api.delete(roots, headers=auth("boss", "admin")).status_code == 200  # any admin
    assert api.get(roots, headers=auth("root", "admin")).json()["data"] is None


def test_a_failed_workflow_run_can_be_re_run_by_its_owner(api: TestClient) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Failed

    asyncio.run(_deploy_pipeline())
    file = ingest_file().model_dump(mode="json")
    file["name"] = "again"
    assert api.put("/api/v1/workflows/again", json=file, headers=auth("olga")).status_code == 200
    job = api.post("/api/v1/workflows/again/runs", headers=auth("olga")).json()["data"]
    waiting = api.post(f"/api/v1/workflow-runs/{job['id']}/retry", headers=auth("olga"))
    assert waiting.status_code == 409 and "only a failed" in waiting.json()["message"], waiting.text
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(job["id"], Failed(message="write failed"), force=True)
    assert api.post(f"/api/v1/workflow-runs/{job['id']}/retry", headers=auth("pavel")).status_code == 404
    assert api.post(f"/api/v1/workflow-runs/{job['id']}/retry", headers=auth("vera", "viewer")).status_code == 403
    again = api.post(f"/api/v1/workflow-runs/{job['id']}/retry", headers=auth("olga"))
    assert again.status_code == 200, again.text
    assert again.json()["data"]["state"] == "SCHEDULED" and again.json()["data"]["state_name"] == "AwaitingRetry"
