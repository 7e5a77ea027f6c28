"""The workflow file v1: migration of bare graphs, hashes that ignore the layout, the semantic diff, the JSON
Schema on disk, the split graph checks, and the exported Python code (compiled, not run: see the integration
test)."""

from __future__ import annotations

import ast
import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from openautoglm.core.workflow import WorkflowError, graph_problems
from openautoglm.core.workflow_file import (
    WorkflowFile,
    content_hash,
    json_schema,
    load_workflow,
    logic_hash,
    semantic_diff,
    workflow_name,
)
from openautoglm.stages import signatures
from tests.conftest import EXAMPLES, REPO


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / "workflows" / f"{name}.json").read_text(encoding="utf-8"))
    return data


def test_v0_graph_is_migrated_with_a_name_and_a_layered_layout() -> None:
    raw = json.loads((EXAMPLES / "pipeline" / "run_task.json").read_text(encoding="utf-8"))
    file = load_workflow(raw, name="run_task", app_version="9.9")
    assert file.version == 1 and file.name == "run-task" and file.app_version == "9.9"
    assert file.graph.model_dump() == WorkflowFile.model_validate({"name": "x", "graph": raw}).graph.model_dump()
    columns = {node: pos.x for node, pos in file.layout.items()}
    assert columns["load"] < columns["clean"] < columns["validate"] < columns["infer"] < columns["evaluate"]
    assert columns["evaluate"] == columns["write"] and file.layout["evaluate"].y != file.layout["write"].y
    with pytest.raises(WorkflowError, match="has no name"):
        load_workflow(raw)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "JSON object"),
        ({"format": "something-else", "version": 1}, "Not a workflow file"),
        ({"format": "openautoglm-workflow", "version": 7, "name": "a", "graph": {}}, "version 7"),
    ],
)
def test_files_that_are_not_v1_workflows_are_refused(data: Any, message: str) -> None:
    with pytest.raises(WorkflowError, match=message):
        load_workflow(data)


@pytest.mark.parametrize("name", ["", "Upper", "-lead", "a_b", "x" * 64, "../etc"])
def test_names_are_validated(name: str) -> None:
    with pytest.raises(ValidationError):
        load_workflow({**example("ingest"), "name": name})


def test_workflow_name_from_a_stem() -> None:
    assert workflow_name("run_task") == "run-task"
    assert workflow_name("My Flow!") == "my-flow"
    assert workflow_name("___") == "workflow"


def test_layout_is_not_logic_but_is_content() -> None:
    file = load_workflow(example("seed-classification"))
    moved = copy.deepcopy(example("seed-classification"))
    moved["layout"]["load"] = {"x": 999, "y": -5}
    moved["app_version"] = "0.2.0"
    moved_file = load_workflow(moved)
    assert logic_hash(file) == logic_hash(moved_file)
    assert content_hash(file) != content_hash(moved_file)
    reordered = copy.deepcopy(example("seed-classification"))
    reordered["graph"]["nodes"].reverse()
    assert logic_hash(load_workflow(reordered)) == logic_hash(file)
    changed = copy.deepcopy(example("seed-classification"))
    changed["graph"]["nodes"][0]["params"]["columns"] = ["text", "id"]
    assert logic_hash(load_workflow(changed)) != logic_hash(file)
    assert semantic_diff(file, moved_file) == {
        "nodes_added": [],
        "nodes_removed": [],
        "nodes_changed": [],
        "edges_added": [],
        "edges_removed": [],
        "name": None,
        "description": None,
    }


def test_positions_of_deleted_nodes_are_dropped() -> None:
    data = {**example("ingest"), "layout": {"load": {"x": 1, "y": 2}, "gone": {"x": 0, "y": 0}}}
    assert set(load_workflow(data).layout) == {"load"}
    with pytest.raises(ValidationError):
        load_workflow({**example("ingest"), "layout": {"load": {"x": float("nan"), "y": 0}}})


def test_semantic_diff_names_nodes_params_and_edges() -> None:
    a = load_workflow(example("run-task"))
    data = copy.deepcopy(example("run-task"))
    nodes = {n["id"]: n for n in data["graph"]["nodes"]}
    nodes["infer"]["params"]["model"]["model"] = "local-e5"
    nodes["infer"]["params"]["batch_size"] = 8
    nodes["write"]["stage"] = "write-results"  # same stage: no change
    nodes["validate"]["params"].pop("gate")
    data["graph"]["nodes"] = [n for n in data["graph"]["nodes"] if n["id"] != "evaluate"]
    data["graph"]["nodes"].append({"id": "score", "stage": "evaluate", "params": {}})
    data["graph"]["edges"] = [e for e in data["graph"]["edges"] if e["target"] != "evaluate.predictions"]
    data["graph"]["edges"].append({"source": "infer.predictions", "target": "score.predictions"})
    diff = semantic_diff(a, load_workflow(data))
    assert diff["nodes_added"] == ["score"] and diff["nodes_removed"] == ["evaluate"]
    changed = {c["id"]: c for c in diff["nodes_changed"]}
    assert set(changed) == {"infer", "validate"}
    assert changed["infer"] == {
        "id": "infer",
        "stage": None,
        "params": [
            {"path": "batch_size", "before": None, "after": 8},
            {"path": "model.model", "before": "local-auto", "after": "local-e5"},
        ],
    }
    assert changed["validate"]["params"] == [{"path": "gate", "before": "quarantine", "after": None}]
    assert diff["edges_added"] == ["infer.predictions->score.predictions"]
    assert diff["edges_removed"] == ["infer.predictions->evaluate.predictions"]
    restaged = copy.deepcopy(example("run-task"))
    restaged["graph"]["nodes"][-1]["stage"] = "write"
    assert semantic_diff(a, load_workflow(restaged))["nodes_changed"][0]["stage"] == ["write-results", "write"]


def test_the_committed_json_schema_is_up_to_date() -> None:
    committed = json.loads((REPO / "docs" / "workflow.schema.json").read_text(encoding="utf-8"))
    assert committed == json_schema(), "regenerate it: openautoglm workflow schema > docs/workflow.schema.json"


def test_every_starter_workflow_is_a_v1_file_that_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    from openautoglm.stages import check_workflow

    monkeypatch.chdir(EXAMPLES)  # the starters' paths are relative to their data root, examples/
    names = sorted(p.stem for p in (EXAMPLES / "workflows").glob("*.json"))
    assert names == ["graph-karate", "ingest", "matching", "ner", "optimize-prompt", "run-task", "seed-classification"]
    for name in names:
        file = load_workflow(example(name))
        assert file.name == name and set(file.layout) == {n.id for n in file.graph.nodes}
        check_workflow(file.graph)


def test_structural_checks_leave_drafts_alone() -> None:
    data = example("run-task")["graph"]
    draft = copy.deepcopy(data)
    draft["nodes"][3]["params"] = {}  # infer without its required task
    draft["edges"] = [e for e in draft["edges"] if e["target"] != "clean.dataset"]
    graph = WorkflowFile.model_validate({"name": "d", "graph": draft}).graph
    assert graph_problems(graph, signatures(), structural_only=True) == []
    found = graph_problems(graph, signatures())
    assert [(p.node, p.structural) for p in found] == [("infer", False), ("clean", False)]
    broken = copy.deepcopy(data)
    broken["nodes"].append({"id": "mystery", "stage": "nope"})
    broken["edges"] += [
        {"source": "ghost.x", "target": "clean.dataset"},
        {"source": "infer.predictions", "target": "write.nothing"},
        {"source": "load.dataset", "target": "write.predictions"},
        {"source": "write.files", "target": "load.dataset"},
    ]
    graph = WorkflowFile.model_validate({"name": "b", "graph": broken}).graph
    messages = [(p.node, p.message) for p in graph_problems(graph, signatures(), structural_only=True)]
    assert messages[0] == ("mystery", "Node 'mystery': unknown stage 'nope'.")
    assert ("clean", "Edge ghost.x -> clean.dataset: no node 'ghost' (source).") in messages
    assert any(node == "write" and "has no input 'nothing'" in m for node, m in messages)
    assert any(node == "write" and "takes Predictions" in m for node, m in messages)
    assert any(node == "load" and "has no input 'dataset'" in m for node, m in messages)
    assert all(p.structural for p in graph_problems(graph, signatures(), structural_only=True))


def test_export_compiles_to_readable_code_in_dependency_order() -> None:
    from openautoglm.core.workflow_codegen import export_code
    from openautoglm.stages import export_stages

    file = load_workflow(example("run-task"))
    code = export_code(file, export_stages())
    ast.parse(code)
    calls = [line.strip() for line in code.splitlines() if "= stage_task" in line]
    order = [c.split("'")[1] for c in calls]
    assert order.index("load") < order.index("clean") < order.index("infer") < order.index("write")
    assert "請" not in code and "请判断以下用户反馈的情感倾向" in code  # literal parameters, readable
    assert "task_run_name='load'" in code and "retries=3" in code
    assert "def run_task(" in code and 'if __name__ == "__main__":' in code
