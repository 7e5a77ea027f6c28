"""The stage catalogue and the workflow-graph checks of the generic pipeline flow (nothing runs here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from openautoglm.core.workflow import WorkflowError, WorkflowGraph, check_graph
from openautoglm.serve.confine import JobPolicy, prepare
from openautoglm.serve.envelope import ApiError, Code
from openautoglm.stages import PortType, catalogue, describe_catalogue, signatures

SOURCE = {"kind": "csv", "path": "examples/user_feedback.csv"}
TASK = {"task_type": "text_classification", "labels": ["正面", "负面"]}


def graph(nodes: list[tuple[str, str, dict[str, Any]]], edges: list[tuple[str, str]]) -> WorkflowGraph:
    return WorkflowGraph.model_validate(
        {
            "nodes": [{"id": i, "stage": s, "params": p} for i, s, p in nodes],
            "edges": [{"source": a, "target": b} for a, b in edges],
        }
    )


CHAIN = (
    [
        ("read", "load", {"source": SOURCE}),
        ("tidy", "clean", {}),
        ("check", "validate", {"label_column": "label", "labels": ["正面", "负面"]}),
        ("predict", "infer", {"task": TASK, "model": {"model": "local-use"}}),
        ("score", "evaluate", {}),
        ("out", "write-results", {}),
    ],
    [
        ("read.dataset", "tidy.dataset"),
        ("tidy.dataset", "check.dataset"),
        ("check.dataset", "predict.dataset"),
        ("predict.predictions", "score.predictions"),
        ("predict.predictions", "out.predictions"),
    ],
)


def rejected(g: WorkflowGraph, *fragments: str) -> str:
    with pytest.raises(WorkflowError) as caught:
        check_graph(g, signatures())
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_catalogue_lists_every_stage_with_ports_and_a_described_schema() -> None:
    described = {s["name"]: s for s in describe_catalogue()}
    assert {"load", "clean", "validate", "write", "infer", "evaluate", "write-results"} <= set(described)
    assert {"graph-load", "meta-features", "graph-search"} <= set(described)
    infer = described["infer"]
    assert [(p["name"], p["type"], p["required"]) for p in infer["inputs"]] == [
        ("dataset", "Dataset", True),
        ("prompt", "Prompt", False),  # an optimize-prompt node's best prompt, when fed
    ]
    assert [(p["name"], p["type"]) for p in infer["outputs"]] == [("predictions", "Predictions")]
    for entry in described.values():
        assert entry["description"]
        schema = entry["params_schema"]
        assert schema["type"] == "object"
        for name, field in schema.get("properties", {}).items():
            assert field.get("description") or "$ref" in field or "allOf" in field, (entry["name"], name)
        json.dumps(entry)  # JSON-able as served
    batch = described["infer"]["params_schema"]["properties"]["batch_size"]
    assert any(option.get("maximum") == 100_000 for option in batch.get("anyOf", [batch]))  # bounds are there
    assert {p.type for s in catalogue().values() for p in (*s.inputs, *s.outputs)} <= set(PortType)


def test_a_valid_chain_is_ordered_by_its_edges() -> None:
    order = [n.id for n in check_graph(graph(*CHAIN), signatures())]
    assert order.index("read") < order.index("tidy") < order.index("check") < order.index("predict")
    assert order.index("predict") < min(order.index("score"), order.index("out"))


def test_an_unknown_stage_is_named() -> None:
    nodes, edges = CHAIN
    rejected(graph([*nodes, ("odd", "summarise", {})], edges), "Node 'odd'", "unknown stage 'summarise'")


def test_parameters_that_fail_the_stage_schema_are_named() -> None:
    nodes, edges = CHAIN
    bad = [(i, s, {**p, "batch_size": 0} if i == "predict" else p) for i, s, p in nodes]
    rejected(graph(bad, edges), "Node 'predict' (infer)", "batch_size")
    extra = [(i, s, {**p, "colour": "red"} if i == "tidy" else p) for i, s, p in nodes]
    rejected(graph(extra, edges), "Node 'tidy' (clean)", "colour")


def test_a_missing_required_input_is_named() -> None:
    nodes, edges = CHAIN
    rejected(graph(nodes, [e for e in edges if e[1] != "score.predictions"]), "Node 'score'", "required input")


def test_a_port_type_mismatch_is_named() -> None:
    nodes, edges = CHAIN
    swapped = [("read.dataset", "score.predictions") if e[1] == "score.predictions" else e for e in edges]
    rejected(graph(nodes, swapped), "Node 'score'", "takes Predictions", "gives Dataset")


def test_unknown_ports_nodes_and_double_feeds_are_named() -> None:
    nodes, edges = CHAIN
    rejected(graph(nodes, [*edges, ("read.rows", "out.predictions")]), "Node 'read' (load) has no output 'rows'")
    rejected(graph(nodes, [*edges, ("ghost.dataset", "tidy.dataset")]), "no node 'ghost'")
    rejected(graph(nodes, [*edges, ("read.dataset", "check.dataset")]), "Node 'check'", "fed twice")
    rejected(graph([*nodes, ("read", "clean", {})], edges), "Node 'read' is defined twice")


def test_a_cycle_is_named() -> None:
    nodes = [("a", "clean", {}), ("b", "clean", {}), ("c", "validate", {})]
    message = rejected(
        graph(nodes, [("a.dataset", "b.dataset"), ("b.dataset", "c.dataset"), ("c.dataset", "a.dataset")]),
        "on a cycle",
    )
    assert message.startswith("Node '")


def test_a_jobs_caller_cannot_reach_outside_the_data_roots_through_a_node(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "reviews.csv").write_text("text\n好\n", encoding="utf-8")
    policy = JobPolicy(data_roots=(root,), connections={})
    nodes, edges = CHAIN

    def with_source(source: dict[str, Any]) -> dict[str, Any]:
        g = graph([(i, s, {"source": source} if s == "load" else p) for i, s, p in nodes], edges)
        return {"params": {"graph": g.model_dump(mode="json")}}

    for hostile in ({"kind": "csv", "path": "/etc/passwd"}, {"kind": "sql", "url": "sqlite:////etc/x", "query": "t"}):
        with pytest.raises(ApiError) as caught:
            prepare("pipeline", {}, with_source(hostile), policy)
        assert caught.value.code is Code.INVALID
    out = prepare("pipeline", {}, with_source({"kind": "csv", "path": "reviews.csv"}), policy)
    source = out["params"]["graph"]["nodes"][0]["params"]["source"]
    assert source["path"] == str((root / "reviews.csv").resolve())
    with pytest.raises(ApiError) as caught:  # an invalid graph is refused before any flow run is created
        prepare("pipeline", {}, {"params": {"graph": graph(nodes, edges[:-1]).model_dump(mode="json")}}, policy)
    assert "Node 'out'" in caught.value.message
    with pytest.raises(ApiError):
        prepare("pipeline", {}, {"params": {**with_source(SOURCE)["params"], "output_dir": "/tmp/x"}}, policy)


def test_the_catalogue_loads_without_torch() -> None:
    """Listing the stages (CLI `stages`, GET /api/v1/stages, the canvas) imports no torch or PyG: the graph stages
    import them when they run (3.6 s of the CLI's 6.4 s before)."""
    import subprocess
    import sys

    code = (
        "import sys; from openautoglm.stages import catalogue; names = list(catalogue()); "
        "assert 'graph_search' in names, names; "
        "print(sorted(m for m in ('torch', 'torch_geometric') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
