"""`/api/v1/jobs` against a real `prefect server` with the project's deployments registered: an operator triggers
a deployment run with parameters and reads its state; another operator gets 404 for it; an admin may read it; a
viewer may not trigger; unknown deployments and bad ids are 404; once a real worker has run it, the job shows
its results (the flow run's artifacts).

Confinement (the probe of 2026-12-01, each case through the real API): a source outside the data roots, an output
folder of the caller's, a database or password variable of the caller's, a results database, a model endpoint and
an unknown top-level parameter are all 422 before any flow run exists; admins list every job; the rows of the input
(``task-sample``) are shown only for data under the data roots (or to admins)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from openautoglm.serve.testing import Signer, api_process, keys_json
from tests.conftest import REPO
from tests.integration.servers import BIN, prefect_server, start, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIGNER = Signer.rsa("jobs-1")


def bearer(sub: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {SIGNER.token(sub, roles)}"}


@contextmanager
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP listener on loopback standing in for a caller's database server: yields its port and what it got
    (one entry per connection, with the first bytes a client sent, e.g. a PostgreSQL startup packet)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    received: list[bytes] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    received.append(conn.recv(4096) or b"<connected>")
                except OSError:
                    received.append(b"<connected>")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        done.set()
        thread.join(timeout=5)
        server.close()


def test_jobs_trigger_read_and_ownership(tmp_path: Path) -> None:
    loops = tmp_path / "loops"  # a second data root holding a symlink loop
    loops.mkdir()
    (loops / "a").symlink_to(loops / "b")
    (loops / "b").symlink_to(loops / "a")
    with prefect_server(tmp_path / "server") as api_url:
        env = {"PREFECT_API_URL": api_url, "PREFECT_HOME": str(tmp_path / "client")}
        deployed = subprocess.run(
            [
                sys.executable,
                "-m",
                "openautoglm.cli",
                "deploy",
                "--only",
                "nightly-classification",
                "--only",
                "ingest-example",
                "--only",
                "pipeline-example",
            ],
            cwd=REPO,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert deployed.returncode == 0, deployed.stderr[-3000:]
        api_env = {
            **env,
            "OPENAUTOGLM_HOME": str(tmp_path / "home"),
            "OPENAUTOGLM_SERVE_JWT_KEYS": keys_json(SIGNER),
            "OPENAUTOGLM_SERVE_PRELOAD": "false",
            "OPENAUTOGLM_SERVE_DATA_ROOTS": json.dumps([str(REPO / "examples"), str(loops)]),
            "OPENAUTOGLM_SERVE_SQL_CONNECTIONS": json.dumps(
                {"warehouse": {"url": "postgresql+psycopg://reader@127.0.0.1:5432/test", "password_env": "PGPASS"}}
            ),
            "ZHIPUAI_API_KEY": "sk-the-workers-secret",
        }
        with api_process(api_env, tmp_path / "api.log") as base, listener() as (evil_port, received):
            parameters = {
                "params": {
                    "source": {"kind": "csv", "path": "user_feedback.csv"},  # under the data root
                    "task": {"task_type": "text_classification", "labels": ["正面", "负面"]},
                    "model": {"model": "local-use"},
                }
            }
            created = httpx.post(
                f"{base}/api/v1/jobs",
                json={"deployment": "run_task/nightly-classification", "parameters": parameters},
                headers=bearer("olga", "operator"),
                timeout=60,
            )
            assert created.status_code == 200, created.text
            job = created.json()["data"]
            assert job["state"] in ("SCHEDULED", "PENDING") and job["deployment"] == "run_task/nightly-classification"
            assert job["parameters"]["params"]["task"]["labels"] == ["正面", "负面"]
            # sent to the worker resolved, so it reads the file that was checked
            assert job["parameters"]["params"]["source"]["path"] == str((REPO / "examples/user_feedback.csv").resolve())
            assert job["parameters"]["params"]["label_column"] == "label"  # the deployment's, merged in

            probes = {
                "source": {"source": {"kind": "csv", "path": "/etc/passwd"}},
                "output_dir": {"output_dir": "../outside"},
                "source.url": {
                    "source": {
                        "kind": "sql",
                        "url": "postgresql+psycopg://me@127.0.0.2:5432/x",
                        "query": "t",
                        "password_env": "HOME",
                    }
                },
                "output_sql_url": {"output_sql_url": "postgresql+psycopg://me@127.0.0.2/x", "output_table": "t"},
                "model.base_url": {"model": {"model": "glm-4-flash", "base_url": "http://127.0.0.2:9/api/paas/v4/"}},
            }
            for where, params in probes.items():
                probe = httpx.post(
                    f"{base}/api/v1/jobs",
                    json={"deployment": "run_task/nightly-classification", "parameters": {"params": params}},
                    headers=bearer("mallory", "operator"),
                    timeout=60,
                )
                assert probe.status_code == 422 and probe.json()["code"] == 42200, (where, probe.text)
                assert where in probe.json()["message"], (where, probe.text)
            top = httpx.post(
                f"{base}/api/v1/jobs",
                json={"deployment": "run_task/nightly-classification", "parameters": {"params": {}, "surprise": 1}},
                headers=bearer("mallory", "operator"),
                timeout=60,
            )
            assert top.status_code == 422 and "unknown parameter" in top.json()["message"], top.text
            # The review's critical finding, exactly as sent (2026-12-07), and its variants: a named connection with a
            # caller's URL and password variable after it, in every key order, for a source, a results database and
            # a pipeline graph node. All 422; no run exists, and the listener (the caller's "database") hears nothing
            # even once a worker is running (below).
            evil = f"postgresql+psycopg://evil@127.0.0.1:{evil_port}/x"
            source = {
                "kind": "sql",
                "connection": "warehouse",
                "url": evil,
                "password_env": "ZHIPUAI_API_KEY",
                "query": "SELECT 1 AS text",
            }
            node = {"id": "load", "stage": "load", "params": {"source": dict(reversed(source.items()))}}
            graph = {"nodes": [node], "edges": []}
            secret_probes = [
                ("ingest/ingest-example", {"source": source}, "source.password_env"),
                ("ingest/ingest-example", {"source": dict(reversed(source.items()))}, "source.password_env"),
                (
                    "run_task/nightly-classification",
                    {"output_connection": "warehouse", "output_sql_url": evil, "output_table": "t"},
                    "output_sql_url",
                ),
                ("run_task/nightly-classification", {"model": {"model": "LOCAL:/etc"}}, "model.model"),
                ("pipeline/pipeline-example", {"graph": graph}, "graph.nodes.0.params.source.password_env"),
            ]
            for deployment, params, where in secret_probes:
                probe = httpx.post(
                    f"{base}/api/v1/jobs",
                    json={"deployment": deployment, "parameters": {"params": params}},
                    headers=bearer("mallory", "operator"),
                    timeout=60,
                )
                assert probe.status_code == 422 and probe.json()["code"] == 42200, (where, probe.text)
                assert where in probe.json()["message"], (where, probe.text)
                assert "ZHIPUAI" not in probe.text and "/etc" not in probe.json()["message"].split(":", 1)[0]
            # A NUL byte or a symlink loop in a path: 422 naming the parameter, and the keep-alive connection is
            # still good for the next request (a 500 reset it).
            with httpx.Client(base_url=base, headers=bearer("mallory", "operator"), timeout=60) as client:
                for path in ("user_feedback.csv\x00/../../etc/passwd", str(loops / "a" / "x")):
                    params = {"source": {"kind": "csv", "path": path}}
                    probe = client.post(
                        "/api/v1/jobs",
                        json={"deployment": "run_task/nightly-classification", "parameters": {"params": params}},
                    )
                    assert probe.status_code == 422 and "source.path" in probe.json()["message"], probe.text
                    assert client.get("/healthz").status_code == 200  # the same connection answers again
            # no run was created for any refused job
            assert httpx.get(f"{base}/api/v1/jobs", headers=bearer("mallory", "operator")).json()["data"]["jobs"] == []

            mine = httpx.get(f"{base}/api/v1/jobs/{job['id']}", headers=bearer("olga", "operator"), timeout=30)
            assert mine.status_code == 200, mine.text
            assert mine.json()["data"]["id"] == job["id"]
            assert mine.json()["data"]["deployment"] == "run_task/nightly-classification"

            theirs = httpx.get(f"{base}/api/v1/jobs/{job['id']}", headers=bearer("pavel", "operator"), timeout=30)
            assert theirs.status_code == 404 and theirs.json() == {
                "code": 40400,
                "data": None,
                "message": "no such job",
            }
            missing = httpx.get(
                f"{base}/api/v1/jobs/00000000-0000-4000-8000-000000000000", headers=bearer("olga", "operator")
            )
            assert missing.json() == theirs.json()  # another user's job looks exactly like no job
            assert httpx.get(f"{base}/api/v1/jobs/not-a-uuid", headers=bearer("olga", "operator")).status_code == 404
            assert httpx.get(f"{base}/api/v1/jobs/{job['id']}", headers=bearer("root", "admin")).status_code == 200

            listed = httpx.get(f"{base}/api/v1/jobs", headers=bearer("olga", "operator")).json()["data"]["jobs"]
            assert [j["id"] for j in listed] == [job["id"]]
            assert httpx.get(f"{base}/api/v1/jobs", headers=bearer("pavel", "operator")).json()["data"]["jobs"] == []
            # the deployment's own source (relative to the worker's folder): its rows are not shown to operators
            plain = httpx.post(
                f"{base}/api/v1/jobs",
                json={"deployment": "run_task/nightly-classification"},
                headers=bearer("pavel", "operator"),
                timeout=60,
            )
            assert plain.status_code == 200, plain.text
            plain_id = plain.json()["data"]["id"]
            everyone = httpx.get(f"{base}/api/v1/jobs", headers=bearer("root", "admin")).json()["data"]["jobs"]
            assert {job["id"], plain_id} == {j["id"] for j in everyone}  # admins list every job

            invalid = httpx.post(
                f"{base}/api/v1/jobs",
                json={"deployment": "run_task/nightly-classification", "parameters": {"params": {"gate": 12}}},
                headers=bearer("olga", "operator"),
                timeout=60,
            )
            assert invalid.status_code == 422 and invalid.json()["code"] == 42200, invalid.text
            unknown = httpx.post(
                f"{base}/api/v1/jobs", json={"deployment": "run_task/nope"}, headers=bearer("olga", "operator")
            )
            assert unknown.status_code == 404 and unknown.json()["code"] == 40400
            viewer = httpx.post(
                f"{base}/api/v1/jobs",
                json={"deployment": "run_task/nightly-classification"},
                headers=bearer("vera", "viewer"),
            )
            assert viewer.status_code == 403
            metrics = httpx.get(f"{base}/metrics").text
            assert 'openautoglm_jobs_triggered_total{deployment="run_task/nightly-classification"} 2.0' in metrics

            # A worker picks the run up; once it finishes, the job shows its results (the run's artifacts).
            worker_env = {
                **env,
                "OPENAUTOGLM_HOME": str(tmp_path / "worker-home"),
                "OPENAUTOGLM_TASK_RUNNER": "threads",
            }
            worker = start(
                [str(BIN / "openautoglm"), "worker", "--pool", "openautoglm-pool"], worker_env, tmp_path / "w.log"
            )
            try:
                deadline = time.monotonic() + 240
                while True:
                    data = httpx.get(f"{base}/api/v1/jobs/{job['id']}", headers=bearer("olga", "operator")).json()[
                        "data"
                    ]
                    other = httpx.get(f"{base}/api/v1/jobs/{plain_id}", headers=bearer("pavel", "operator")).json()[
                        "data"
                    ]
                    final = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
                    if data["state"] in final and other["state"] in final:
                        break
                    assert time.monotonic() < deadline, (tmp_path / "w.log").read_text(errors="replace")[-3000:]
                    time.sleep(2)
            finally:
                stop(worker)
            assert received == [], received  # no worker ever connected to the caller's "database"
            assert data["state"] == "COMPLETED", (tmp_path / "w.log").read_text(errors="replace")[-3000:]
            results = {r["key"]: r for r in data["results"]}
            assert {"row-counts", "task-results"} <= set(results), list(results)
            assert "60" in json.dumps(results["row-counts"]["data"])  # 60 rows read from user_feedback.csv
            assert "task-sample" in results  # olga's data lies under the data root: she may see its rows
            assert other["state"] == "COMPLETED", other
            assert {r["key"] for r in other["results"]} >= {"row-counts", "task-results"}
            assert "task-sample" not in {r["key"] for r in other["results"]}  # the deployment's data: withheld
            admin_view = httpx.get(f"{base}/api/v1/jobs/{plain_id}", headers=bearer("root", "admin")).json()["data"]
            assert "task-sample" in {r["key"] for r in admin_view["results"]}
