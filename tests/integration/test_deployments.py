"""What a user does in the Prefect UI, against a real `prefect server`: deploy, start a worker, trigger a run with
parameters, watch it complete; and a scheduled run picked up by the worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.conftest import task_run_names
from tests.integration.servers import BIN, prefect_server, start, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openautoglm.cli", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def wait_state(client: object, run_id: object, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.read_flow_run(run_id)  # type: ignore[attr-defined]
        if run.state and run.state.is_final():
            return str(run.state.type.value)
        time.sleep(2)
    raise TimeoutError(f"flow run {run_id} did not finish in {timeout} s")


def test_deploy_trigger_and_schedule_on_a_real_server(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = tmp_path / "home"
    with prefect_server(tmp_path / "server") as api_url:
        env = {"PREFECT_API_URL": api_url, "OPENAUTOGLM_HOME": str(home), "PREFECT_HOME": str(tmp_path / "client")}
        deployed = cli(["deploy"], env)
        assert deployed.returncode == 0, deployed.stderr[-3000:]
        assert "run_task/nightly-classification" in deployed.stdout
        assert "optimize_prompt/optimize-prompt-example" in deployed.stdout
        worker = start([str(BIN / "openautoglm"), "worker", "--pool", "openautoglm-pool"], env, tmp_path / "worker.log")
        try:
            with temporary_settings(updates={PREFECT_API_URL: api_url}):
                out = tmp_path / "triggered"
                started = time.monotonic()
                run = run_deployment(
                    "run_task/nightly-classification",
                    timeout=0,
                    parameters={
                        "params": {
                            "source": {"kind": "csv", "path": "examples/user_feedback.csv"},
                            "task": {"task_type": "text_classification", "labels": ["正面", "负面", "中性"]},
                            "label_column": "label",
                            "output_dir": str(out),
                        }
                    },
                )
                with get_client(sync_client=True) as client:
                    assert wait_state(client, run.id) == "COMPLETED", (tmp_path / "worker.log").read_text()[-4000:]
                    trigger_to_completed = time.monotonic() - started
                    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
                    assert summary["rows_predicted"] == 60 and summary["flow_run_id"] == str(run.id)
                    mlflow_run = MlflowClient(f"sqlite:///{home.resolve()}/mlflow.db").get_run(summary["mlflow_run_id"])
                    assert mlflow_run.data.tags["prefect.flow_run_id"] == str(run.id)

                    # The prompt optimiser from its deployment form (its defaults plus an output folder).
                    opt_out = tmp_path / "optimised"
                    opt_run = run_deployment(
                        "optimize_prompt/optimize-prompt-example",
                        timeout=0,
                        parameters={
                            "params": {
                                "source": {"kind": "csv", "path": "examples/user_feedback.csv"},
                                "task": {"task_type": "text_classification", "labels": ["正面", "负面", "中性"]},
                                "label_column": "label",
                                "budget": {"max_calls": 200},
                                "dev_size": 20,
                                "test_size": 20,
                                "output_dir": str(opt_out),
                            }
                        },
                    )
                    assert wait_state(client, opt_run.id) == "COMPLETED", (tmp_path / "worker.log").read_text()[-4000:]
                    optimised = json.loads((opt_out / "summary.json").read_text(encoding="utf-8"))
                    assert optimised["prompt"]["calls"] <= 200 and optimised["flow_run_id"] == str(opt_run.id)
                    assert (opt_out / "optimised_prompt.json").exists()

                    # The generic pipeline flow, triggered with a graph of its caller's as the parameter.
                    graph = json.loads((REPO / "examples" / "pipeline" / "ingest.json").read_text(encoding="utf-8"))
                    pipe_out = tmp_path / "pipeline"
                    pipe_run = run_deployment(
                        "pipeline/pipeline-example",
                        timeout=0,
                        parameters={"params": {"graph": graph, "output_dir": str(pipe_out)}},
                    )
                    assert wait_state(client, pipe_run.id) == "COMPLETED", (tmp_path / "worker.log").read_text()[-4000:]
                    outputs = json.loads((pipe_out / "summary.json").read_text(encoding="utf-8"))["outputs"]
                    assert outputs["write"]["files"]["rows"] == 59 and (pipe_out / "data.parquet").exists()
                    assert sorted(task_run_names(str(pipe_run.id))) == ["clean", "load", "validate", "write"]

                    # A schedule: the server's scheduler creates runs, the worker picks them up.
                    scheduled = cli(["deploy", "--only", "ingest-example", "--interval", "10"], env)
                    assert scheduled.returncode == 0, scheduled.stderr[-3000:]
                    deployment = client.read_deployment_by_name("ingest/ingest-example")
                    deadline = time.monotonic() + 240
                    state = None
                    while time.monotonic() < deadline and state != "COMPLETED":
                        runs = client.read_flow_runs()
                        mine = [r for r in runs if r.deployment_id == deployment.id and r.auto_scheduled]
                        state = next(
                            (str(r.state.type.value) for r in mine if r.state and r.state.is_completed()), None
                        )
                        time.sleep(3)
                    assert state == "COMPLETED", (tmp_path / "worker.log").read_text()[-4000:]
        finally:
            stop(worker)
    (tmp_path.parent / "trigger_to_completed_s.txt").write_text(f"{trigger_to_completed:.1f}")
    print(f"trigger to completed: {trigger_to_completed:.1f} s")
