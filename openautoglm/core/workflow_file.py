"""The workflow file (format version 1): a named, described workflow graph and where the canvas draws its nodes.

Pure: no I/O. The logic (``name``, ``description``, ``graph``) is kept apart from the drawing (``layout``), so a
moved node changes the file's content but not its :func:`logic_hash` nor its :func:`semantic_diff`. Older files
are migrated on load (:func:`load_workflow`): version 0 is a bare ``{"nodes", "edges"}`` graph, such as
``examples/pipeline/*.json``; it is named by the caller (a file stem) and laid out in layers.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from openautoglm.core.workflow import Node, WorkflowError, WorkflowGraph, topological_order

FORMAT = "openautoglm-workflow"
#: The format version this code writes; files of older versions are migrated on load.
VERSION = 1
NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
_NAME = re.compile(NAME)
#: Grid of the generated layout (v0 files): one column per layer, one row per node of the layer.
LAYER_DX, ROW_DY = 260.0, 140.0
COORDINATE = 1e7


class Position(BaseModel):
    """Where the canvas draws a node (its top-left corner, in canvas units)."""

    model_config = ConfigDict(extra="forbid")

    x: float = Field(ge=-COORDINATE, le=COORDINATE)
    y: float = Field(ge=-COORDINATE, le=COORDINATE)

    @field_validator("x", "y")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("a coordinate must be a finite number")
        return value


class WorkflowFile(BaseModel):
    """A workflow file, format version 1 (see ``docs/canvas-contract.md`` and ``docs/workflow.schema.json``)."""

    model_config = ConfigDict(extra="forbid", title="Open-AutoGLM workflow file")

    format: Literal["openautoglm-workflow"] = Field(
        default="openautoglm-workflow", description="Always 'openautoglm-workflow'."
    )
    version: Literal[1] = Field(default=1, description="Format version; older files are migrated on load.")
    app_version: str = Field(default="", max_length=40, description="Open-AutoGLM version that saved the file.")
    name: str = Field(pattern=NAME, description="Lower-case letters, digits and '-', at most 63 characters.")
    description: str = Field(default="", max_length=2000, description="What the workflow does.")
    graph: WorkflowGraph = Field(description="The logic: nodes (stage + parameters) and edges (node.port).")
    layout: dict[str, Position] = Field(
        default_factory=dict, max_length=200, description="Node id -> position on the canvas (not logic)."
    )

    @model_validator(mode="after")
    def _layout_of_known_nodes(self) -> WorkflowFile:
        # The canvas may keep the position of a node it deleted: such positions are dropped, not an error.
        ids = {node.id for node in self.graph.nodes}
        self.layout = {k: v for k, v in self.layout.items() if k in ids}
        return self


def workflow_name(text: str) -> str:
    """A valid workflow name made from ``text`` (a file stem): ``run_task`` -> ``run-task``."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    return name if _NAME.match(name) else "workflow"


def load_workflow(data: Any, *, name: str | None = None, app_version: str | None = None) -> WorkflowFile:
    """A workflow file from parsed JSON, migrated to the current version.

    Args:
        data: A v1 file, or a v0 bare graph ``{"nodes", "edges"}``.
        name: Name of a v0 graph (which has none), e.g. its file stem; made valid with :func:`workflow_name`.
        app_version: Written into the file when given (whoever saves writes its own version).

    Raises:
        WorkflowError: not an object, another format, or a version newer than this code reads.
        pydantic.ValidationError: the file's fields do not validate (``loc`` says where).
    """
    if not isinstance(data, Mapping):
        raise WorkflowError("A workflow file is a JSON object.", hint="see docs/workflow.schema.json")
    data = dict(data)
    if "format" not in data and "version" not in data and "nodes" in data:
        data = _from_v0(data, name)
    elif data.get("format") != FORMAT:
        raise WorkflowError(
            f"Not a workflow file: format is {data.get('format')!r}, not '{FORMAT}'.",
            hint="a workflow file has format, version, name and graph; a bare {nodes, edges} graph is read too",
        )
    version = data.get("version", VERSION)
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise WorkflowError(
            f"The workflow file is format version {version}; this Open-AutoGLM reads versions up to {VERSION}.",
            hint="upgrade Open-AutoGLM to read it",
        )
    if app_version is not None:
        data["app_version"] = app_version
    return WorkflowFile.model_validate(data)


def _from_v0(graph: dict[str, Any], name: str | None) -> dict[str, Any]:
    if not name:
        raise WorkflowError("A bare graph (format version 0) has no name.", hint="name it, e.g. by its file stem")
    parsed = WorkflowGraph.model_validate(graph)
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": workflow_name(name),
        "description": "",
        "graph": graph,
        "layout": {k: v.model_dump() for k, v in layered_layout(parsed).items()},
    }


def layered_layout(graph: WorkflowGraph) -> dict[str, Position]:
    """A simple layered drawing: a node's column is the longest chain of edges leading to it; rows in file order.

    A graph with a cycle (not runnable, but drawable) is laid out in one row, in file order.
    """
    try:
        order = topological_order(graph)
    except WorkflowError:
        return {node.id: Position(x=i * LAYER_DX, y=0.0) for i, node in enumerate(graph.nodes)}
    layer: dict[str, int] = {}
    parents: dict[str, list[str]] = {}
    for edge in graph.edges:
        parents.setdefault(edge.target_node, []).append(edge.source_node)
    for node in order:
        layer[node.id] = max((layer[p] + 1 for p in parents.get(node.id, ()) if p in layer), default=0)
    rows: dict[int, int] = {}
    layout: dict[str, Position] = {}
    for node in graph.nodes:
        column = layer.get(node.id, 0)
        row = rows.get(column, 0)
        rows[column] = row + 1
        layout[node.id] = Position(x=column * LAYER_DX, y=row * ROW_DY)
    return layout


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes that are hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def logic_hash(file: WorkflowFile) -> str:
    """SHA-256 of what the workflow does: name, description and graph (nodes by id, edges sorted).

    The layout and ``app_version`` are left out, and so is the order of the nodes and edges in the file.
    """
    graph = file.graph.model_dump(mode="json")
    logic = {
        "name": file.name,
        "description": file.description,
        "graph": {
            "nodes": sorted(graph["nodes"], key=lambda n: n["id"]),
            "edges": sorted(graph["edges"], key=lambda e: (e["source"], e["target"])),
        },
    }
    return hashlib.sha256(canonical_json(logic)).hexdigest()


def content_hash(file: WorkflowFile) -> str:
    """SHA-256 of the whole file (layout and ``app_version`` included): a store keeps a version per content."""
    return hashlib.sha256(canonical_json(file.model_dump(mode="json"))).hexdigest()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested objects by dotted path (a list or an empty object is one leaf)."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _edge(edge: Any) -> str:
    return f"{edge.source}->{edge.target}"


def semantic_diff(a: WorkflowFile, b: WorkflowFile) -> dict[str, Any]:
    """What changed in the logic from ``a`` to ``b`` (positions, node order and ``app_version`` ignored).

    Returns:
        ``{"nodes_added": [id], "nodes_removed": [id], "nodes_changed": [{"id", "stage": [before, after] or None,
        "params": [{"path": "a.b", "before", "after"}]}], "edges_added": ["a.x->b.y"], "edges_removed": [...]}``;
        a parameter absent on one side is ``None`` there. Name and description changes are reported too, as
        ``name`` and ``description`` (``[before, after]`` or ``None``).
    """
    before: dict[str, Node] = {n.id: n for n in a.graph.nodes}
    after: dict[str, Node] = {n.id: n for n in b.graph.nodes}
    changed: list[dict[str, Any]] = []
    for node_id, new in after.items():
        old = before.get(node_id)
        if old is None:
            continue
        old_params, new_params = _flatten(old.params), _flatten(new.params)
        params = [
            {"path": path, "before": old_params.get(path), "after": new_params.get(path)}
            for path in sorted(set(old_params) | set(new_params))
            if old_params.get(path) != new_params.get(path) or (path in old_params) != (path in new_params)
        ]
        stage = [old.stage, new.stage] if old.stage != new.stage else None
        if stage or params:
            changed.append({"id": node_id, "stage": stage, "params": params})
    old_edges = [_edge(e) for e in a.graph.edges]
    new_edges = [_edge(e) for e in b.graph.edges]
    return {
        "nodes_added": [i for i in after if i not in before],
        "nodes_removed": [i for i in before if i not in after],
        "nodes_changed": changed,
        "edges_added": [e for e in dict.fromkeys(new_edges) if e not in set(old_edges)],
        "edges_removed": [e for e in dict.fromkeys(old_edges) if e not in set(new_edges)],
        "name": [a.name, b.name] if a.name != b.name else None,
        "description": [a.description, b.description] if a.description != b.description else None,
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a v1 workflow file (what ``openautoglm workflow schema`` prints)."""
    schema = WorkflowFile.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
