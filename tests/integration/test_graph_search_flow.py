"""The graph search through the flow: Dask workers, nested MLflow runs, Prefect artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from openautoglm import AutoGraph
from openautoglm.adapters.graphs import KarateGraph, TableGraph
from openautoglm.flows.graph_search import GraphSearchParams, graph_search
from openautoglm.settings import get_settings
from tests.conftest import EXAMPLES
from tests.integration.conftest import flow_run_artifacts, task_run_names

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_six_trial_search_on_karate_with_two_workers(prefect_server: None, tmp_path: Path) -> None:
    params = GraphSearchParams(
        graph=KarateGraph(), algo="rl", budget=6, parallel=2, final_seeds=2, max_epochs=100, output_dir=tmp_path
    )
    result = graph_search(params)
    assert result.trials == 6
    assert 0.0 < result.final_test_mean <= 1.0 and result.meta["nodes"] == 34
    assert "homophily" in result.prior
    assert sorted(n.rsplit("-", 1)[0] for n in task_run_names(result.flow_run_id)).count("train-architecture") == 6

    client = MlflowClient(get_settings().tracking_uri)
    parent = client.get_run(result.mlflow_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.mlflow_run_id}'"
    )
    assert len(children) == 6
    assert {"val", "test", "seconds"} <= set(children[0].data.metrics)
    assert "ops" in children[0].data.params and parent.data.metrics["trials"] == 6
    logged = {a.path for a in client.list_artifacts(result.mlflow_run_id)}
    assert {"search_curve.png", "history.json", "best_model.pt"} <= logged
    artifacts = flow_run_artifacts(result.flow_run_id)
    assert artifacts["leaderboard"].type == "table" and "mlflow-run" in artifacts
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


def test_sdk_fit_on_a_user_graph(home: Path) -> None:
    import pandas as pd

    nodes = pd.read_csv(EXAMPLES / "graph" / "nodes.csv").rename(columns={"member": "id", "club": "label"})
    edges = pd.read_csv(EXAMPLES / "graph" / "edges.csv").rename(columns={"from": "source", "to": "target"})
    auto = AutoGraph(task="node", algo="evolution", budget=4, final_seeds=2, hpo_trials=2).fit((nodes, edges))
    assert auto.best_arch is not None and auto.final is not None and auto.final.test_mean > 0.6  # 2 clubs
    assert len(auto.leaderboard()) == 4 and auto.hpo is not None
