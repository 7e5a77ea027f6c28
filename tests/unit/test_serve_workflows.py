"""The workflow routes in-process (FastAPI TestClient, a SQLite store in tmp): seeds, save/version/unchanged,
structural refusals with per-node errors, check with drafts and pre-flight, diff, export, hostile input."""

from __future__ import annotations

import ast
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openautoglm.serve.app import create_app
from openautoglm.serve.settings import ServeSettings
from openautoglm.serve.testing import Signer, keys_json
from tests.conftest import EXAMPLES

SIGNER = Signer.ec("wf-1")
BASE = "/api/v1/workflows"


def auth(role: str = "operator", sub: str = "olga") -> dict[str, str]:
    return {"Authorization": f"Bearer {SIGNER.token(sub, [role])}"}


def starter(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / "workflows" / f"{name}.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # no Prefect: run routes answer 503
    settings = ServeSettings(
        classify_model="serve-fake",
        ner_model="serve-fake",
        match_model="serve-fake",
        cache="off",
        preload=False,
        jwt_keys=keys_json(SIGNER),
        rate_limit="10000/minute",
        workflows_url=f"sqlite:///{tmp_path / 'workflows.db'}",
        data_roots=[EXAMPLES],  # the starters' paths are relative to it, as the README's recipe sets it
    )
    with TestClient(create_app(settings)) as c:
        yield c


def data(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "data", "message"}
    return body["data"]


def test_starters_are_listed_and_read(client: TestClient) -> None:
    listed = data(client.get(BASE, headers=auth("viewer")))["workflows"]
    assert [w["name"] for w in listed] == [
        "graph-karate",
        "ingest",
        "matching",
        "ner",
        "optimize-prompt",
        "run-task",
        "seed-classification",
    ]
    assert all(w["version"] == 1 and w["author"] == "openautoglm" and len(w["hash"]) == 64 for w in listed)
    read = data(client.get(f"{BASE}/seed-classification", headers=auth("viewer")))
    assert read["version"] == 1 and read["workflow"]["graph"] == starter("seed-classification")["graph"]
    assert read["workflow"]["layout"] == starter("seed-classification")["layout"]


def test_save_versions_unchanged_and_diff(client: TestClient) -> None:
    file = {**starter("ingest"), "name": "mine"}
    first = data(client.put(f"{BASE}/mine", json=file, headers=auth()))
    assert first["version"] == 1 and first["unchanged"] is False
    assert data(client.put(f"{BASE}/mine", json=file, headers=auth()))["unchanged"] is True
    moved = copy.deepcopy(file)
    moved["layout"]["load"] = {"x": 40, "y": 400}
    second = data(client.put(f"{BASE}/mine", json=moved, headers=auth(sub="pavel")))
    assert second["version"] == 2 and second["logic_hash"] == first["logic_hash"] and second["hash"] != first["hash"]
    changed = copy.deepcopy(moved)
    changed["graph"]["nodes"][3]["params"]["format"] = "csv"
    assert data(client.put(f"{BASE}/mine", json=changed, headers=auth()))["version"] == 3
    versions = data(client.get(f"{BASE}/mine/versions", headers=auth("viewer")))["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1] and versions[1]["author"] == "pavel"
    assert data(client.get(f"{BASE}/mine/diff?from=1&to=2", headers=auth("viewer")))["nodes_changed"] == []
    latest = data(client.get(f"{BASE}/mine/diff", headers=auth("viewer")))  # latest against the one before
    assert latest["nodes_changed"] == [
        {"id": "write", "stage": None, "params": [{"path": "format", "before": "parquet", "after": "csv"}]}
    ]
    assert data(client.get(f"{BASE}/mine?version=1", headers=auth("viewer")))["workflow"]["layout"] == file["layout"]
    assert data(client.get(f"{BASE}/mine?version=9", headers=auth("viewer")), 404) is None
    assert client.get(f"{BASE}/nope/versions", headers=auth("viewer")).json()["message"] == "No workflow named 'nope'."


def test_a_bare_graph_is_migrated_on_save(client: TestClient) -> None:
    graph = json.loads((EXAMPLES / "pipeline" / "run_task.json").read_text(encoding="utf-8"))
    saved = data(client.put(f"{BASE}/bare", json=graph, headers=auth()))
    read = data(client.get(f"{BASE}/bare", headers=auth("viewer")))["workflow"]
    assert saved["version"] == 1 and read["version"] == 1 and read["name"] == "bare"
    assert set(read["layout"]) == {n["id"] for n in graph["nodes"]}


def test_save_refuses_structural_errors_with_one_entry_per_node(client: TestClient) -> None:
    file = copy.deepcopy({**starter("run-task"), "name": "broken"})
    file["graph"]["nodes"].append({"id": "mystery", "stage": "nope", "params": {}})
    file["graph"]["edges"].append({"source": "infer.predictions", "target": "clean.dataset"})
    errors = data(client.put(f"{BASE}/broken", json=file, headers=auth()), 422)["errors"]
    assert {e["node"] for e in errors} == {"mystery", "clean"}
    assert any("unknown stage 'nope'" in e["message"] for e in errors)
    assert any("takes Dataset" in e["message"] for e in errors)
    cyclic = copy.deepcopy({**starter("ingest"), "name": "cyclic"})
    cyclic["graph"]["nodes"].append({"id": "again", "stage": "clean", "params": {}})
    cyclic["graph"]["edges"] += [
        {"source": "again.dataset", "target": "load.dataset"},
    ]
    errors = data(client.put(f"{BASE}/cyclic", json=cyclic, headers=auth()), 422)["errors"]
    assert errors[0]["node"] == "load" and "has no input 'dataset'" in errors[0]["message"]
    # a draft (missing input, parameters that do not validate yet) is saved
    draft = copy.deepcopy({**starter("run-task"), "name": "draft"})
    draft["graph"]["nodes"][3]["params"] = {}
    draft["graph"]["edges"] = draft["graph"]["edges"][1:]
    assert data(client.put(f"{BASE}/draft", json=draft, headers=auth()))["version"] == 1
    assert "draft" in {w["name"] for w in data(client.get(BASE, headers=auth("viewer")))["workflows"]}


def test_check_reports_drafts_and_preflight_per_node(client: TestClient) -> None:
    good = data(client.post(f"{BASE}/check", json=starter("ingest"), headers=auth()))
    assert good == {"ok": True, "errors": []}
    draft = copy.deepcopy(starter("run-task"))
    draft["graph"]["nodes"][0]["params"]["source"]["path"] = "missing.csv"
    draft["graph"]["nodes"][3]["params"] = {}
    draft["graph"]["edges"] = [e for e in draft["graph"]["edges"] if e["target"] != "evaluate.predictions"]
    checked = data(client.post(f"{BASE}/check", json=draft, headers=auth()))
    assert checked["ok"] is False
    by_node = {e["node"]: e["message"] for e in checked["errors"]}
    assert set(by_node) == {"load", "infer", "evaluate"}
    assert "missing.csv" in by_node["load"] and "bad parameters" in by_node["infer"]
    assert "not connected" in by_node["evaluate"]
    # A path outside the data roots is what the run would refuse, found by the run's confinement; pre-flight looks
    # only at files under the roots, so whether such a file exists is not told (the same answer either way).
    answers = set()
    for outside in ("/etc/passwd", "/etc/no-such-file.csv", "../../etc/no-such-file.csv"):
        probe = copy.deepcopy(starter("ingest"))
        probe["graph"]["nodes"][0]["params"]["source"]["path"] = outside
        refused = data(client.post(f"{BASE}/check", json=probe, headers=auth()))
        assert refused["ok"] is False and [e["node"] for e in refused["errors"]] == ["load"]
        message = refused["errors"][0]["message"]
        assert "outside the data roots" in message and "relative to it" in refused["errors"][0]["hint"]
        answers.add(message.replace(outside, "<path>"))
        saved = data(client.put(f"{BASE}/ingest", json=probe, headers=auth()), 422)  # and Save refuses it
        assert saved["errors"] == refused["errors"]
    assert len(answers) == 1
    shape = data(client.post(f"{BASE}/check", json={"format": "openautoglm-workflow", "version": 1}, headers=auth()))
    assert shape["ok"] is False and shape["errors"][0]["node"] is None


def test_export_gives_python_code(client: TestClient) -> None:
    exported = data(client.get(f"{BASE}/run-task/export", headers=auth("viewer")))
    assert exported["filename"] == "run-task.py"
    ast.parse(exported["code"])
    assert "def run_task(" in exported["code"] and "stage_task.with_options(" in exported["code"]
    assert f"DATA_ROOT = Path({str(EXAMPLES.resolve())!r})" in exported["code"]  # the server's first data root


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", f"{BASE}/..%2Fetc", None, 404),  # decoded to ../etc: no such route
        ("GET", f"{BASE}/UPPER", None, 422),
        ("GET", f"{BASE}/{'a' * 64}", None, 422),
        ("GET", f"{BASE}/ingest?version=0", None, 422),
        ("GET", f"{BASE}/ingest?version=99999999999999999999", None, 422),
        ("GET", f"{BASE}/ingest/diff?from=-1", None, 422),
        ("PUT", f"{BASE}/other", starter("ingest"), 422),  # the file is named 'ingest'
        ("PUT", f"{BASE}/ingest", [1, 2, 3], 422),
        ("PUT", f"{BASE}/ingest", {"format": "openautoglm-workflow", "version": 99, "name": "ingest"}, 422),
        ("PUT", f"{BASE}/ingest", {**starter("ingest"), "surprise": True}, 422),
        ("POST", f"{BASE}/ingest/runs", {"version": 0}, 422),
        ("POST", f"{BASE}/ingest/runs", {"version": 5}, 404),
        ("POST", f"{BASE}/nope/runs", None, 404),
        # Prefect at a closed port (503); an earlier test's server may answer instead: no such deployment (404)
        ("POST", f"{BASE}/ingest/runs", None, (503, 404)),
        ("GET", "/api/v1/workflow-runs/not-a-uuid", None, 404),
    ],
)
def test_hostile_or_wrong_input_is_one_clear_envelope(
    client: TestClient, method: str, path: str, body: Any, status: int | tuple[int, ...]
) -> None:
    response = client.request(method, path, json=body, headers=auth())
    assert response.status_code in (status if isinstance(status, tuple) else (status,)), response.text
    payload = response.json()
    assert set(payload) == {"code", "data", "message"} and payload["message"]
    assert "Traceback" not in response.text


# 40 levels pass the body's own limit (OPENAUTOGLM_SERVE_MAX_JSON_DEPTH, 64) and meet the workflow file's (32);
# 20,000 are refused as a body before anything parses it.
@pytest.mark.parametrize(("depth", "status", "code"), [(40, 422, 42200), (20_000, 400, 40000)])
def test_deeply_nested_parameters_are_refused_not_500(client: TestClient, depth: int, status: int, code: int) -> None:
    params = '{"a":' * depth + "1" + "}" * depth
    body = '{"nodes": [{"id": "load", "stage": "clean", "params": ' + params + "}]}"
    headers = {**auth(), "content-type": "application/json"}
    response = client.put(f"{BASE}/deep", content=body, headers=headers)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    if depth == 40:
        assert response.json()["data"]["errors"][0]["node"] == "load"
        assert "nested deeper than 32" in response.json()["data"]["errors"][0]["message"]


def test_a_huge_body_is_refused_before_it_is_read(client: TestClient) -> None:
    file = {**starter("ingest"), "description": "x" * 2_000_000}
    response = client.put(f"{BASE}/ingest", json=file, headers=auth())
    assert response.status_code == 413 and response.json()["code"] == 41300


def test_a_store_that_is_down_is_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ServeSettings(
        preload=False,
        jwt_keys=keys_json(SIGNER),
        classify_model="serve-fake",
        ner_model="serve-fake",
        match_model="serve-fake",
        workflows_url="postgresql+psycopg://nobody@127.0.0.1:9/none",
    )
    with TestClient(create_app(settings)) as c:
        response = c.get(BASE, headers=auth("viewer"))
    assert response.status_code == 503 and response.json()["message"] == "the workflow store is unavailable"


def test_node_summaries_are_read_from_the_node_artifact() -> None:
    from openautoglm.flows.pipeline_node import node_report
    from openautoglm.serve.jobs import _node_summary

    assert _node_summary('{"dataset": {"rows_out": 3}}') == {"dataset": {"rows_out": 3}}
    rows = node_report("write", {}, {"files": {"data": "d.parquet", "rows": 3}})
    report = _node_summary(json.dumps(rows))
    assert report is not None and report["outputs"]["files"]["rows"] == 3
    assert _node_summary("# a markdown note") is None
    assert _node_summary("x" * 300_000) is None
    assert _node_summary(None) is None
