"""Flows on an existing Dask cluster (`dask scheduler` + `dask worker` processes), including a worker killed
mid-run: every row is still produced exactly once, and answers already cached are not asked for again."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from openautoglm.adapters.graphs import KarateGraph
from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.sources import CsvSource
from openautoglm.core.nlp.types import TaskConfig
from openautoglm.flows.graph_search import GraphSearchParams, graph_search
from openautoglm.flows.run_task import RunTaskParams, run_task
from openautoglm.flows.runtime import task_runner
from openautoglm.settings import Settings, get_settings
from openautoglm.testing import FakeZhipuServer
from tests.conftest import EXAMPLES
from tests.integration.servers import dask_cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LABELS = ("正面", "负面", "中性")


def on(address: str):  # type: ignore[no-untyped-def]
    return task_runner(Settings(dask_address=address))


def worker_env() -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "OPENAUTOGLM_HOME": str(get_settings().home)}


def test_flows_on_an_external_cluster_match_the_local_run(prefect_server: None, tmp_path: Path) -> None:
    params = RunTaskParams(
        source=CsvSource(path=EXAMPLES / "user_feedback.csv"),
        task=TaskConfig(labels=LABELS),
        label_column="label",
        batch_size=16,
        cache="off",
        output_dir=tmp_path / "local",
    )
    local = run_task(params)
    with dask_cluster(tmp_path / "dask", 2, worker_env()) as (address, _):
        remote = run_task.with_options(task_runner=on(address))(
            params.model_copy(update={"output_dir": tmp_path / "remote"})
        )
        search = graph_search.with_options(task_runner=on(address))(
            GraphSearchParams(
                graph=KarateGraph(),
                algo="random",
                budget=4,
                parallel=2,
                final_seeds=1,
                max_epochs=60,
                output_dir=tmp_path / "graph",
            )
        )
    a = pd.read_csv(local.results_path)[["row_id", "prediction", "score"]]
    b = pd.read_csv(remote.results_path)[["row_id", "prediction", "score"]]
    pd.testing.assert_frame_equal(a, b)
    assert remote.batches == 4 and search.trials == 4


def test_a_killed_worker_loses_no_row_and_repeats_no_cached_call(
    prefect_server: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = pd.DataFrame({"text": [f"第{i}条反馈，内容{i * 7 % 13}" for i in range(48)]})
    path = tmp_path / "rows.csv"
    texts.to_csv(path, index=False)
    with (
        FakeZhipuServer(latency_s=0.25) as server,
        dask_cluster(tmp_path / "dask", 2, {**worker_env(), "ZHIPUAI_API_KEY": server.api_key}) as (address, workers),
    ):
        monkeypatch.setenv("ZHIPUAI_API_KEY", server.api_key)
        victim = workers[0]

        def kill_when_busy() -> None:
            deadline = time.monotonic() + 60
            while server.answered < 12 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.killpg(victim.pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_when_busy, daemon=True)
        killer.start()
        result = run_task.with_options(task_runner=on(address))(
            RunTaskParams(
                source=CsvSource(path=path),
                task=TaskConfig(labels=LABELS),
                model=ModelSpec(model="glm-4", base_url=server.base_url, max_concurrency=2),
                batch_size=4,
                output_dir=tmp_path / "out",
            )
        )
        killer.join(timeout=5)
        assert victim.poll() is not None, "the worker was not killed during the run"
        asked = Counter(body["messages"][-1]["content"] for body in server.bodies)

    frame = pd.read_csv(result.results_path)
    assert len(frame) == 48 and frame["row_id"].is_unique and set(frame["status"]) == {"ok"}
    # Rows answered before the kill were cached; only calls in flight on the dead worker are asked twice.
    repeated = sum(n - 1 for n in asked.values())
    assert len(asked) == 48 and repeated <= 2  # max_concurrency 2 per worker
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rows_predicted"] == 48
