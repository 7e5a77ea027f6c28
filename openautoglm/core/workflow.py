"""A workflow graph (nodes = stage + parameters, edges = output port -> input port) and its checks.

Pure: the graph is checked against *signatures* (a stage's typed ports and a parameter check), so this module
knows nothing of Prefect or of the stages themselves. :func:`check_graph` rejects, before anything runs, with a
message naming the node: an unknown stage, parameters that fail the stage's schema, an edge to a missing node or
port, a port type mismatch, an input fed twice, a missing required input, and a cycle. It returns the nodes in
an order where every node comes after the nodes it reads from. :func:`graph_problems` lists every problem (each
naming its node) instead of raising the first, and can leave out what a saved draft may still lack.
"""

from __future__ import annotations

import graphlib
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.registry import normalize_name

NODE_ID = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
#: Parameters nested deeper than this are refused (no stage needs a tenth of it; hashing and dumping recurse).
MAX_PARAM_DEPTH = 32


class WorkflowError(ConfigurationError):
    """A workflow graph that cannot run; the message names the node (or edge) at fault."""


class Node(BaseModel):
    """One step of a workflow: a catalogue stage with its parameters."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=NODE_ID, description="Unique name of the step; also the name of its task run.")
    stage: str = Field(min_length=1, max_length=64, description="Catalogue stage (see `openautoglm stages`).")
    params: dict[str, Any] = Field(default_factory=dict, description="The stage's parameters (its JSON Schema).")

    @field_validator("params")
    @classmethod
    def _not_too_deep(cls, value: dict[str, Any]) -> dict[str, Any]:
        stack: list[tuple[Any, int]] = [(value, 1)]
        while stack:  # iterative: a hostile depth must not exhaust the interpreter's stack
            item, depth = stack.pop()
            if depth > MAX_PARAM_DEPTH:
                raise ValueError(f"parameters nested deeper than {MAX_PARAM_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
        return value


class Edge(BaseModel):
    """An output port of one node feeding an input port of another, written ``node.port``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str = Field(max_length=130, description="``node.output_port``")
    target: str = Field(max_length=130, description="``node.input_port``")

    @field_validator("source", "target")
    @classmethod
    def _dotted(cls, value: str) -> str:
        node, _, port = value.partition(".")
        if not node or not port:
            raise ValueError(f"'{value}' is not of the form node.port")
        return value

    @property
    def source_node(self) -> str:
        return self.source.partition(".")[0]

    @property
    def source_port(self) -> str:
        return self.source.partition(".")[2]

    @property
    def target_node(self) -> str:
        return self.target.partition(".")[0]

    @property
    def target_port(self) -> str:
        return self.target.partition(".")[2]


class WorkflowGraph(BaseModel):
    """A workflow: the steps and the data edges between them."""

    model_config = ConfigDict(extra="forbid")

    nodes: list[Node] = Field(min_length=1, max_length=200)
    edges: list[Edge] = Field(default_factory=list, max_length=1000)


@dataclass(frozen=True)
class InputPort:
    """What a stage reads on one input: its type name and whether it must be connected."""

    type: str
    required: bool = True


@dataclass(frozen=True)
class Signature:
    """What :func:`check_graph` needs to know about a stage."""

    inputs: Mapping[str, InputPort]
    outputs: Mapping[str, str]
    check_params: Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a graph: the node at fault (None when no node is), what, and what to do.

    ``structural`` problems (an unknown stage, an edge to a missing node or port, a port type mismatch, an input
    fed twice, a cycle, a node id used twice) make a graph unsavable; the others (parameters that do not validate,
    a required input left unconnected) are allowed in a saved draft and reported by a full check.
    """

    node: str | None
    message: str
    hint: str | None = None
    structural: bool = True

    def error(self) -> WorkflowError:
        return WorkflowError(self.message, hint=self.hint)

    def as_dict(self) -> dict[str, str | None]:
        return {"node": self.node, "message": self.message, "hint": self.hint}


def check_graph(graph: WorkflowGraph, signatures: Mapping[str, Signature]) -> list[Node]:
    """Check ``graph`` against the stages' signatures; return its nodes in dependency order.

    Raises:
        WorkflowError: naming the first node (or edge) that is wrong and what to do.
    """
    problems = graph_problems(graph, signatures)
    if problems:
        raise problems[0].error()
    return topological_order(graph)


def graph_problems(
    graph: WorkflowGraph, signatures: Mapping[str, Signature], *, structural_only: bool = False
) -> list[Problem]:
    """Every problem of ``graph``, in the order :func:`check_graph` meets them (its first is the one it raises).

    Args:
        structural_only: Leave out the draft problems (parameters, unconnected required inputs).
    """
    problems: list[Problem] = []
    nodes: dict[str, Node] = {}
    for node in graph.nodes:
        if node.id in nodes:
            problems.append(Problem(node.id, f"Node '{node.id}' is defined twice.", "give every node its own id"))
        nodes[node.id] = node
    known: dict[str, Signature] = {}
    for node in graph.nodes:
        signature = signatures.get(normalize_name(node.stage))
        if signature is None:
            problems.append(
                Problem(
                    node.id,
                    f"Node '{node.id}': unknown stage '{node.stage}'.",
                    f"stages are {', '.join(sorted(signatures))} (openautoglm stages)",
                )
            )
            continue
        known[node.id] = signature
        if structural_only:
            continue
        try:
            signature.check_params(node.params)
        except (ValueError, ConfigurationError) as error:
            problems.append(
                Problem(
                    node.id,
                    f"Node '{node.id}' ({node.stage}): bad parameters: {_first_error(error)}",
                    "see the stage's parameter schema with: openautoglm stages --json",
                    structural=False,
                )
            )
    fed: dict[tuple[str, str], str] = {}
    for edge in graph.edges:
        missing = [
            (end, n) for end, n in (("source", edge.source_node), ("target", edge.target_node)) if n not in nodes
        ]
        if missing:
            end, node_id = missing[0]
            other = edge.target_node if end == "source" else edge.source_node
            problems.append(
                Problem(
                    other if other in nodes else None,
                    f"Edge {edge.source} -> {edge.target}: no node '{node_id}' ({end}).",
                )
            )
            continue
        source_sig, target_sig = known.get(edge.source_node), known.get(edge.target_node)
        if source_sig is None or target_sig is None:
            continue  # an unknown stage, reported above
        if edge.source_port not in source_sig.outputs:
            problems.append(
                Problem(
                    edge.source_node,
                    f"Node '{edge.source_node}' ({nodes[edge.source_node].stage}) has no output '{edge.source_port}'.",
                    f"its outputs are {', '.join(source_sig.outputs) or '(none)'}",
                )
            )
            continue
        if edge.target_port not in target_sig.inputs:
            problems.append(
                Problem(
                    edge.target_node,
                    f"Node '{edge.target_node}' ({nodes[edge.target_node].stage}) has no input '{edge.target_port}'.",
                    f"its inputs are {', '.join(target_sig.inputs) or '(none)'}",
                )
            )
            continue
        produced = source_sig.outputs[edge.source_port]
        wanted = target_sig.inputs[edge.target_port].type
        if produced != wanted:
            problems.append(
                Problem(
                    edge.target_node,
                    f"Node '{edge.target_node}': input '{edge.target_port}' takes {wanted}, but {edge.source} "
                    f"gives {produced}.",
                    f"connect an output of type {wanted}",
                )
            )
            continue
        key = (edge.target_node, edge.target_port)
        if key in fed:
            problems.append(
                Problem(
                    edge.target_node,
                    f"Node '{edge.target_node}': input '{edge.target_port}' is fed twice "
                    f"({fed[key]} and {edge.source}).",
                    "an input takes one edge",
                )
            )
            continue
        fed[key] = edge.source
    if not structural_only:
        for node in graph.nodes:
            for port, spec in known[node.id].inputs.items() if node.id in known else ():
                if spec.required and (node.id, port) not in fed:
                    problems.append(
                        Problem(
                            node.id,
                            f"Node '{node.id}' ({node.stage}): required input '{port}' ({spec.type}) is not connected.",
                            f"add an edge '<node>.<output>' -> '{node.id}.{port}'",
                            structural=False,
                        )
                    )
    cycle = _cycle(graph)
    if cycle:
        problems.append(_cycle_problem(cycle))
    return problems


def topological_order(graph: WorkflowGraph) -> list[Node]:
    """The nodes, each after the nodes it reads from (edges to missing nodes are ignored).

    Raises:
        WorkflowError: the graph has a cycle (naming a node on it).
    """
    nodes = {node.id: node for node in graph.nodes}
    try:
        order = list(_sorter(graph).static_order())
    except graphlib.CycleError as error:
        raise _cycle_problem(list(dict.fromkeys(error.args[1]))).error() from None
    return [nodes[node_id] for node_id in order]


def _sorter(graph: WorkflowGraph) -> graphlib.TopologicalSorter[str]:
    ids = {node.id for node in graph.nodes}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for node in graph.nodes:
        sorter.add(node.id)
    for edge in graph.edges:
        if edge.source_node in ids and edge.target_node in ids:
            sorter.add(edge.target_node, edge.source_node)
    return sorter


def _cycle(graph: WorkflowGraph) -> list[str] | None:
    try:
        _sorter(graph).prepare()
    except graphlib.CycleError as error:
        return list(dict.fromkeys(error.args[1]))
    return None


def _cycle_problem(cycle: list[str]) -> Problem:
    return Problem(
        cycle[0],
        f"Node '{cycle[0]}' is on a cycle: {' -> '.join([*cycle, cycle[0]])}.",
        "a workflow is a DAG: remove one of these edges",
    )


def inputs_of(graph: WorkflowGraph, node_id: str) -> dict[str, tuple[str, str]]:
    """``{input_port: (source_node, source_port)}`` for one node."""
    return {e.target_port: (e.source_node, e.source_port) for e in graph.edges if e.target_node == node_id}


def lineage_keys(graph: WorkflowGraph) -> dict[str, str]:
    """A key per node that changes when the node's stage or parameters change or any upstream node's do: what a
    node's result may be reused under (with the flow run, when a failed run is retried). Expects an acyclic graph."""
    order = graphlib.TopologicalSorter(
        {n.id: {e.source_node for e in graph.edges if e.target_node == n.id} for n in graph.nodes}
    ).static_order()
    nodes = {n.id: n for n in graph.nodes}
    keys: dict[str, str] = {}
    for node_id in order:
        node = nodes[node_id]
        upstream = sorted((port, keys[src], out) for port, (src, out) in inputs_of(graph, node_id).items())
        canonical = json.dumps([node.stage, node.params, upstream], sort_keys=True, ensure_ascii=False, default=str)
        keys[node_id] = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]
    return keys


def _first_error(error: Exception) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "(params)"
            return f"{where}: {first.get('msg', error)}"
        except (IndexError, TypeError):
            pass
    return str(error).splitlines()[0]
