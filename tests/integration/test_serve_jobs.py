"""`/api/v1/jobs` against a real `prefect server` with the project's deployments registered: an operator triggers
a deployment run with parameters and reads its state; another operator gets 404 for it; an admin may read it; a
viewer may not trigger; unknown deployments and bad ids are 404; once a real worker has run it, the job shows
its results (the flow run's artifacts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
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


def test_jobs_trigger_read_and_ownership(tmp_path: Path) -> None:
    with prefect_server(tmp_path / "server") as api_url:
        env = {"PREFECT_API_URL": api_url, "PREFECT_HOME": str(tmp_path / "client")}
        deployed = subprocess.run(
            [sys.executable, "-m", "openautoglm.cli", "deploy", "--only", "nightly-classification"],
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
        }
        with api_process(api_env, tmp_path / "api.log") as base:
            parameters = {
                "params": {
                    "source": {"kind": "csv", "path": "examples/user_feedback.csv"},
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
            assert 'openautoglm_jobs_triggered_total{deployment="run_task/nightly-classification"} 1.0' in metrics

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
                    if data["state"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                        break
                    assert time.monotonic() < deadline, (tmp_path / "w.log").read_text(errors="replace")[-3000:]
                    time.sleep(2)
            finally:
                stop(worker)
            assert data["state"] == "COMPLETED", (tmp_path / "w.log").read_text(errors="replace")[-3000:]
            results = {r["key"]: r for r in data["results"]}
            assert {"row-counts", "task-results"} <= set(results), list(results)
            assert "60" in json.dumps(results["row-counts"]["data"])  # 60 rows read from user_feedback.csv
