"""The generic pipeline flow on the session's Prefect server: graphs give the named flows' files, edges are data
dependencies of the task runs, and a bad graph stops before anything runs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.sources import CsvSource
from openautoglm.core.nlp.types import TaskConfig
from openautoglm.flows.ingest import IngestParams, ingest
from openautoglm.flows.pipeline import PipelineParams, pipeline
from openautoglm.flows.pipeline_node import NODE_ARTIFACT_PREFIX, read_node_report
from openautoglm.flows.run_task import RunTaskParams, run_task
from tests.conftest import EXAMPLES, REPO
from tests.integration.conftest import flow_run_artifact_list

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LABELS = ["正面", "负面", "中性"]


def example_graph(name: str) -> dict[str, Any]:
    graph: dict[str, Any] = json.loads((EXAMPLES / "pipeline" / f"{name}.json").read_text(encoding="utf-8"))
    for node in graph["nodes"]:  # the examples use paths relative to the checkout
        source = node.get("params", {}).get("source")
        if source and "path" in source:
            source["path"] = str(REPO / source["path"])
    return graph


def task_runs(flow_run_id: str) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name: r for r in runs}


def test_ingest_as_a_graph_writes_what_the_ingest_flow_writes(prefect_server: None, tmp_path: Path) -> None:
    named = ingest(
        IngestParams(
            source=CsvSource(path=EXAMPLES / "user_feedback_dirty.csv", on_error="quarantine"),
            label_column="label",
            labels=LABELS,
            id_column="id",
            gate="quarantine",
            output_dir=tmp_path / "named",
        )
    )
    graph = pipeline(PipelineParams(graph=example_graph("ingest"), output_dir=tmp_path / "graph"))

    pd.testing.assert_frame_equal(
        pd.read_parquet(named.data_path), pd.read_parquet(tmp_path / "graph" / "data.parquet")
    )
    quarantine = [
        pd.read_csv(p, encoding="utf-8-sig") for p in (named.quarantine_path, tmp_path / "graph" / "quarantine.csv")
    ]
    pd.testing.assert_frame_equal(*quarantine)
    assert len(quarantine[0]) == 7 and graph.outputs["write"]["files"]["rows"] == named.rows_out == 59
    assert graph.outputs["validate"]["dataset"]["rows_quarantined"] == 7

    # One task run per node, named after it, and each edge is a data dependency of the downstream task run.
    assert graph.flow_run_id is not None
    runs = task_runs(graph.flow_run_id)
    assert sorted(runs) == ["clean", "load", "validate", "write"]
    for upstream, downstream in (("load", "clean"), ("clean", "validate"), ("validate", "write")):
        ids = {str(getattr(i, "id", "")) for i in runs[downstream].task_inputs["inputs"]}
        assert ids == {str(runs[upstream].id)}, (downstream, runs[downstream].task_inputs)
    assert not runs["load"].task_inputs.get("inputs")


def test_run_task_as_a_graph_gives_the_run_task_flows_results(prefect_server: None, tmp_path: Path) -> None:
    graph_def = example_graph("run_task")
    infer = next(n for n in graph_def["nodes"] if n["stage"] == "infer")["params"]
    named = run_task(
        RunTaskParams(
            source=CsvSource(path=EXAMPLES / "user_feedback.csv"),
            task=TaskConfig.model_validate(infer["task"]),
            model=ModelSpec.model_validate(infer["model"]),
            label_column="label",
            output_dir=tmp_path / "named",
        )
    )
    graph = pipeline(PipelineParams(graph=graph_def, output_dir=tmp_path / "graph"))

    columns = ["row_id", "id", "text", "label", "prediction", "status"]
    ours = pd.read_csv(tmp_path / "graph" / "results.csv", encoding="utf-8-sig")[columns]
    pd.testing.assert_frame_equal(pd.read_csv(named.results_path, encoding="utf-8-sig")[columns], ours)
    assert len(ours) == 60 and (ours["status"] == "ok").all()
    # The named flow's run graph is the real chain too: each step of a chunk waits for the one before it (the flow
    # streams its source a chunk at a time, issue 35: reading, dropping, gating and writing happen in the flow).
    assert named.flow_run_id is not None
    runs = {name.rsplit("-", 1)[0]: run for name, run in task_runs(named.flow_run_id).items()}
    names = {str(run.id): name for name, run in runs.items()}
    chain = [("clean-chunk", "validate"), ("validate", "infer-batch")]
    for upstream, downstream in chain:
        ups = {names.get(str(getattr(i, "id", ""))) for v in runs[downstream].task_inputs.values() for i in v}
        assert upstream in ups, (downstream, ups)

    metrics = graph.outputs["evaluate"]["metrics"]
    assert metrics["accuracy"] == pytest.approx(named.metrics["accuracy"])
    assert metrics["macro_f1"] == pytest.approx(named.metrics["macro_f1"])

    # Each node published its report (what the canvas shows): rows in and out, the first rows of its outputs.
    assert graph.flow_run_id is not None
    reports = {
        a.description.removeprefix(NODE_ARTIFACT_PREFIX): read_node_report(a.data)
        for a in flow_run_artifact_list(graph.flow_run_id)
        if (a.description or "").startswith(NODE_ARTIFACT_PREFIX)
    }
    assert set(reports) == {"load", "clean", "validate", "infer", "evaluate", "write"}
    assert reports["load"]["rows_in"] is None and reports["load"]["rows_out"] == 60
    assert reports["infer"]["rows_in"] == 60 and reports["infer"]["rows_out"] == 60
    head = reports["infer"]["preview"]["predictions"]
    assert len(head) == 5 and {"text", "prediction", "status"} <= set(head[0])
    assert head[0]["text"] == ours["text"][0]
    assert reports["evaluate"]["outputs"]["metrics"]["accuracy"] == pytest.approx(metrics["accuracy"])


def test_a_graph_stage_chain_and_a_bad_graph_from_the_cli(prefect_server: None, tmp_path: Path) -> None:
    graph = {
        "nodes": [
            {"id": "karate", "stage": "graph-load", "params": {"graph": {"kind": "karate"}}},
            {"id": "meta", "stage": "meta-features"},
        ],
        "edges": [{"source": "karate.graph", "target": "meta.graph"}],
    }
    result = pipeline(PipelineParams(graph=graph, output_dir=tmp_path / "g"))
    assert result.outputs["meta"]["metrics"]["nodes"] == 34

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**graph, "edges": [{"source": "karate.graph", "target": "meta.dataset"}]}))
    done = subprocess.run(
        [str(Path(sys.executable).parent / "openautoglm"), "pipeline", "run", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Node 'meta' (meta-features) has no input 'dataset'" in output
    assert "Traceback" not in output and "flow run" not in output.lower()


def test_a_failed_run_retried_reuses_its_finished_nodes(prefect_server: None, tmp_path: Path) -> None:
    """What a worker does with a retried flow run (the API's retry, or the Prefect UI's): the same flow run runs
    again; the nodes that finished are not run again (their kept results are reused), the failed one is."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.flow_engine import run_flow
    from prefect.states import AwaitingRetry

    graph = example_graph("run_task")
    params = PipelineParams(graph=graph, output_dir=tmp_path / "run")
    (tmp_path / "run" / "results.csv").mkdir(parents=True)  # write-results cannot write its file: it fails
    with get_client(sync_client=True) as client:
        created = client.create_flow_run(pipeline, parameters={"params": params})
        first = run_flow(pipeline, flow_run=created, parameters={"params": params}, return_type="state")
        assert first.is_failed()
        (tmp_path / "run" / "results.csv").rmdir()
        client.set_flow_run_state(created.id, AwaitingRetry(), force=True)
        second = run_flow(
            pipeline, flow_run=client.read_flow_run(created.id), parameters={"params": params}, return_type="state"
        )
        assert second.is_completed(), second
        # Task-run states reach the server as events, a moment after the flow run ends: wait until the last run of
        # every node has its final state (a loaded machine showed 'Running' for the retried write otherwise).
        deadline = time.monotonic() + 30
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[created.id])))
            last = {run.name: run for run in sorted(runs, key=lambda r: r.created)}
            if all(r.state is not None and r.state.is_final() for r in last.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    attempts: dict[str, list[str]] = {}
    for run in sorted(runs, key=lambda r: r.created):
        attempts.setdefault(run.name, []).append(run.state.name if run.state else "?")
    assert attempts["write"] == ["Failed", "Completed"], attempts
    for node in ("load", "clean", "validate", "infer"):
        assert attempts[node] == ["Completed", "Cached"], (node, attempts)
    assert attempts["evaluate"][-1] in ("Cached", "Completed")  # it may not have finished when write failed
    results = pd.read_csv(tmp_path / "run" / "results.csv", encoding="utf-8-sig")
    assert len(results) == 60 and (results["status"] == "ok").all()
    # Kept for the retry only: once the run finished, its kept results are gone.
    from prefect.results import get_default_result_storage

    kept = Path(get_default_result_storage().basepath).expanduser()
    assert not list(kept.glob(f"{created.id}-*"))


def test_the_optimize_prompt_starter_searches_then_classifies_with_the_best_prompt(
    prefect_server: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openautoglm.core.workflow_file import load_workflow

    monkeypatch.chdir(EXAMPLES)  # the starters' paths are relative to their data root
    file = load_workflow(json.loads((EXAMPLES / "workflows" / "optimize-prompt.json").read_text(encoding="utf-8")))
    result = pipeline(PipelineParams(graph=file.graph, output_dir=tmp_path / "run"))
    searched = result.outputs["optimize"]
    assert searched["metrics"]["calls"] <= 500 and searched["metrics"]["candidates"] >= 1
    assert searched["metrics"]["dev_score"] >= searched["metrics"]["start_dev_score"]
    # infer ran with the optimised prompt (its config), not with the template in its own parameters
    best = searched["prompt"]["config"]
    assert result.outputs["infer"]["predictions"]["rows"] == 60
    results = pd.read_csv(tmp_path / "run" / "results.csv", encoding="utf-8-sig")
    assert len(results) == 60 and (results["status"] == "ok").all()
    assert set(results["prediction"]) <= set(best["labels"])
    saved = json.loads((tmp_path / "run" / "optimize" / "optimised_prompt.json").read_text(encoding="utf-8"))
    assert saved["config"] == best
    assert result.outputs["evaluate"]["metrics"]["accuracy"] > 0
