"""Production configuration against the machine's PostgreSQL: a Prefect server on PostgreSQL, and MLflow on
PostgreSQL taking 16 graph-search trials logged in parallel from Dask workers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import EXAMPLES, REPO, require_service
from tests.integration.servers import postgres_database, prefect_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database (dropped afterwards); yields its name."""
    require_service("postgresql", "127.0.0.1", 5432)
    with postgres_database() as name:
        yield name


def test_prefect_server_on_postgresql_runs_a_flow(database: str, tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
    with prefect_server(tmp_path / "server", database_url=url) as api_url:
        env = {**os.environ, "PREFECT_API_URL": api_url, "OPENAUTOGLM_HOME": str(tmp_path / "home")}
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "openautoglm.cli",
                "ingest",
                str(EXAMPLES / "user_feedback.csv"),
                "--label-column",
                "label",
                "--labels",
                "正面,负面,中性",
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    engine = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}")
    with engine.connect() as conn:
        states = conn.execute(sa.text("SELECT state_type FROM flow_run")).scalars().all()
    engine.dispose()
    assert [str(s) for s in states] == ["COMPLETED"] or "StateType.COMPLETED" in str(states)


def test_sixteen_parallel_trials_log_to_mlflow_on_postgresql(
    prefect_server: None, database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    from openautoglm.adapters.graphs import KarateGraph
    from openautoglm.flows.graph_search import GraphSearchParams, graph_search
    from openautoglm.flows.runtime import task_runner
    from openautoglm.settings import Settings

    tracking = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    monkeypatch.setenv("OPENAUTOGLM_MLFLOW_TRACKING_URI", tracking)
    flow = graph_search.with_options(task_runner=task_runner(Settings(dask_workers=4)))
    result = flow(
        GraphSearchParams(
            graph=KarateGraph(),
            algo="random",
            budget=16,
            parallel=16,
            final_seeds=1,
            max_epochs=60,
            transfer=False,
            output_dir=tmp_path,
        )
    )
    client = MlflowClient(tracking)
    children = client.search_runs(
        [client.get_run(result.mlflow_run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.mlflow_run_id}'",
        max_results=100,
    )
    assert len(children) == 16
    assert sorted(int(c.data.tags["trial_index"]) for c in children) == list(range(16))  # none lost, none twice
    assert len({c.data.params["arch"] for c in children}) == 16
    assert all(c.info.status == "FINISHED" and "val" in c.data.metrics for c in children)
