"""The graph search through the flow: Dask workers, nested MLflow runs, Prefect artifacts."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from openautoglm import AutoGraph
from openautoglm.adapters.graphs import KarateGraph, TableGraph
from openautoglm.adapters.nasbench import table
from openautoglm.flows.graph_search import GraphSearchParams, graph_search
from openautoglm.settings import get_settings
from tests.conftest import EXAMPLES
from tests.integration.conftest import flow_run_artifacts, task_run_names
from tests.integration.servers import dask_cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_six_trial_search_on_karate_with_two_workers(prefect_server: None, tmp_path: Path) -> None:
    params = GraphSearchParams(
        graph=KarateGraph(),
        algo="rl",
        budget=6,
        parallel=2,
        survivors=1,
        select_seeds=3,
        final_seeds=4,
        max_epochs=100,
        time_budget_s=600,  # not the size-based default (45 s for 34 nodes): the trial count is asserted below
        output_dir=tmp_path,
    )
    result = graph_search(params)
    assert result.trials == 6
    assert 0.0 < result.final_test_mean <= 1.0 and result.meta["nodes"] == 34
    assert "homophily" in result.prior
    # the baselines the prior names, trained and kept (they run concurrently: completion order varies; submission
    # order is unit-tested); the MLP is always one; a clock may leave hopeless ones out of the selection
    names = {b["name"] for b in result.baselines}
    assert {"mlp", "gcn-pyg"} <= names and all(b["kind"] == "baseline" for b in result.baselines)
    assert result.best_kind in {"baseline", "searched"} and (result.best_kind == "baseline") == bool(
        result.best_baseline
    )
    assert result.max_in_flight == 2 and 1 <= result.select_seeds <= 3 and len(result.survivors) <= len(names) + 1
    pick = result.survivors[0]  # the best mean validation over the selection seeds, never below a baseline's
    assert pick["describe"] == result.best_describe and pick["baseline"] == result.best_baseline
    assert pick["val_mean"] >= max(row["val_mean"] for row in result.survivors if row["baseline"])
    assert result.resampled and all(row["resampled"] for row in result.survivors)  # node task: folds by default
    # 6 trials, then the survivors' extra seeds and the pick's report seeds: more train runs than trials.
    assert sorted(n.rsplit("-", 1)[0] for n in task_run_names(result.flow_run_id)).count("train-architecture") > 6

    client = MlflowClient(get_settings().tracking_uri)
    parent = client.get_run(result.mlflow_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.mlflow_run_id}'"
    )
    assert len(children) == 6
    assert {"val", "test", "seconds"} <= set(children[0].data.metrics)
    assert "op" in children[0].data.params and parent.data.metrics["trials"] == 6
    assert names <= {c.data.params.get("baseline", "") for c in children}
    assert parent.data.tags["openautoglm.pick_kind"] == result.best_kind
    logged = {a.path for a in client.list_artifacts(result.mlflow_run_id)}
    assert {"search_curve.png", "history.json", "best_model.pt"} <= logged
    artifacts = flow_run_artifacts(result.flow_run_id)
    assert artifacts["leaderboard"].type == "table" and "mlflow-run" in artifacts and "selection" in artifacts
    history = json.loads((tmp_path / "history.json").read_text())
    assert [h["index"] for h in history] == list(range(6))


def test_link_prediction_on_a_user_graph_from_csv(prefect_server: None, tmp_path: Path) -> None:
    graph = TableGraph(
        nodes=str(EXAMPLES / "graph" / "nodes.csv"),
        edges=str(EXAMPLES / "graph" / "edges.csv"),
        id_column="member",
        label_column=None,
        source_column="from",
        target_column="to",
        feature_columns=("degree", "clustering", "noise_a", "noise_b"),
    )
    result = graph_search(
        GraphSearchParams(
            graph=graph,
            task="link",
            algo="random",
            budget=3,
            parallel=3,
            final_seeds=2,
            max_epochs=80,
            output_dir=tmp_path,
        )
    )
    assert result.trials == 3 and 0.5 < result.final_test_mean <= 1.0  # AUC
    assert not result.resampled  # links keep their split: folds are for node classification


def test_sdk_fit_on_a_user_graph(home: Path) -> None:
    import pandas as pd

    nodes = pd.read_csv(EXAMPLES / "graph" / "nodes.csv").rename(columns={"member": "id", "club": "label"})
    edges = pd.read_csv(EXAMPLES / "graph" / "edges.csv").rename(columns={"from": "source", "to": "target"})
    auto = AutoGraph(task="node", algo="evolution", budget=4, final_seeds=2, hpo_trials=2).fit((nodes, edges))
    assert auto.best_arch is not None and auto.final is not None and auto.final.test_mean > 0.6  # 2 clubs
    # The board holds every trial: the prior's baselines (trained even past a budget smaller than their number)
    # and the searched candidates the budget leaves room for.
    board = auto.leaderboard()
    assert len(board) == max(4, int((board["kind"] == "baseline").sum())) and auto.hpo is not None
    assert set(board["kind"]) <= {"baseline", "searched"}


def test_a_killed_dask_worker_loses_no_trial(prefect_server: None, tmp_path: Path) -> None:
    """Kill one of two workers once two trials are logged: every trial of the budget still completes, once."""
    from prefect.settings import PREFECT_API_URL

    from openautoglm.flows.runtime import task_runner
    from openautoglm.settings import Settings

    env = {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "OPENAUTOGLM_HOME": str(get_settings().home)}
    experiment = f"kill-{tmp_path.name}"
    client = MlflowClient(get_settings().tracking_uri)

    def trials_logged() -> int:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            return 0
        runs = client.search_runs([found.experiment_id], filter_string="tags.trial_index != ''")
        return len(runs)

    with dask_cluster(tmp_path / "dask", 2, env) as (address, workers):
        victim = workers[0]

        def kill() -> None:
            deadline = time.monotonic() + 120
            while trials_logged() < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            os.killpg(victim.pid, signal.SIGKILL)

        killer = threading.Thread(target=kill, daemon=True)
        killer.start()
        result = graph_search.with_options(task_runner=task_runner(Settings(dask_address=address)))(
            GraphSearchParams(
                graph=KarateGraph(),
                algo="random",
                budget=8,
                parallel=2,
                survivors=1,
                select_seeds=2,
                final_seeds=2,
                max_epochs=200,
                transfer=False,
                experiment=experiment,
                output_dir=tmp_path / "out",
            )
        )
        killer.join(timeout=5)
        assert victim.poll() is not None, "the worker was not killed during the run"
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert result.trials == 8 and len({json.dumps(h["arch"], sort_keys=True) for h in history}) == 8
    assert sorted(h["index"] for h in history) == list(range(8))


def test_the_surrogate_searches_a_nasbench_table_with_the_target_left_out(prefect_server: None, tmp_path: Path) -> None:
    params = GraphSearchParams(nasbench="photo", algo="surrogate", budget=25, parallel=1, output_dir=tmp_path)
    result = graph_search(params)
    assert result.trials == 25
    client = MlflowClient(get_settings().tracking_uri)
    assert client.get_run(result.mlflow_run_id).data.tags["openautoglm.transfer"] == "nasbench-surrogate"
    ranked = sorted(float(v["valid_perf"]) for v in table("photo").values())
    assert result.best_val >= ranked[int(0.99 * len(ranked))]  # top 1% of 26,206 within 25 queries
    with pytest.raises(ValueError, match="macro space"):
        GraphSearchParams(graph=KarateGraph(), algo="surrogate")  # the stack space has no transfer pool
