"""The stage catalogue: every framework stage, registered once with typed ports and a parameter model.

A stage is a pure-ish function ``run(inputs, params, context) -> outputs`` over typed ports (:class:`PortType`),
with a pydantic parameter model whose JSON Schema (descriptions, bounds) is what ``openautoglm stages``,
``GET /api/v1/stages`` and the canvas show. The generic ``pipeline`` flow runs a workflow graph of stages, one
Prefect task run per node (see :func:`stage_task`). Adding a stage is one file in this package: the modules here
are imported by :func:`catalogue` and register themselves with :func:`stage`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from openautoglm.core.errors import OpenAutoGLMError
from openautoglm.core.registry import Registry, normalize_name
from openautoglm.core.workflow import (
    InputPort,
    Node,
    Problem,
    Signature,
    WorkflowError,
    WorkflowGraph,
    check_graph,
    graph_problems,
)


class PortType(StrEnum):
    """The kinds of value that travel along a workflow edge."""

    DATASET = "Dataset"  #: rows of text (a :class:`~openautoglm.core.data.schema.Dataset`, with its quarantine)
    PREDICTIONS = "Predictions"  #: a dataset and one model result per row
    METRICS = "Metrics"  #: a JSON-able dict of figures
    REPORT = "Report"  #: what a data stage did (cleaning counts, validation results)
    PROMPT = "Prompt"  #: an optimised prompt (template, few-shot examples, labels)
    GRAPH = "Graph"  #: a graph source (Planetoid name or node/edge files)
    MODEL = "Model"  #: a trained model saved in a folder
    FILES = "Files"  #: paths written by a sink


@dataclass(frozen=True)
class Port:
    """A named, typed input or output of a stage."""

    name: str
    type: PortType
    description: str
    required: bool = True


@dataclass(frozen=True)
class StageContext:
    """What the runner gives every stage: the run's output folder and the node's id."""

    folder: Path
    node: str = "node"


@dataclass(frozen=True)
class Stage:
    """One catalogue entry."""

    name: str
    description: str
    params: type[BaseModel]
    run: Callable[[Mapping[str, Any], Any, StageContext], dict[str, Any]]
    inputs: tuple[Port, ...] = ()
    outputs: tuple[Port, ...] = ()
    #: Prefect task options for this stage (retries, tags, ...), applied to its task run.
    task_options: Mapping[str, Any] = field(default_factory=dict)
    #: A cheap check of the parameters against the world (a file exists) run before any node of the graph runs.
    preflight: Callable[[Any], None] | None = None

    def check_params(self, params: Mapping[str, Any]) -> BaseModel:
        """The validated parameter model (raises pydantic's ``ValidationError``)."""
        return self.params.model_validate(dict(params))

    def signature(self) -> Signature:
        return Signature(
            inputs={p.name: InputPort(p.type.value, p.required) for p in self.inputs},
            outputs={p.name: p.type.value for p in self.outputs},
            check_params=self.check_params,
        )

    def describe(self) -> dict[str, Any]:
        """The entry as JSON: name, description, ports and the parameter JSON Schema."""

        def ports(items: tuple[Port, ...]) -> list[dict[str, Any]]:
            return [
                {"name": p.name, "type": p.type.value, "description": p.description, "required": p.required}
                for p in items
            ]

        return {
            "name": self.name,
            "description": self.description,
            "inputs": ports(self.inputs),
            "outputs": ports(self.outputs),
            "params_schema": self.params.model_json_schema(),
        }


STAGES: Registry[Stage] = Registry("stage", base=Stage)


def stage(
    name: str,
    description: str,
    *,
    params: type[BaseModel],
    inputs: tuple[Port, ...] = (),
    outputs: tuple[Port, ...] = (),
    preflight: Callable[[Any], None] | None = None,
    **task_options: Any,
) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Decorator registering ``run(inputs, params, context)`` as the stage ``name``."""

    def decorator(run: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        STAGES.add(name, Stage(name, description, params, run, inputs, outputs, task_options, preflight))
        return run

    return decorator


@cache
def catalogue() -> dict[str, Stage]:
    """Every stage, by name (importing this package's modules registers them)."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return {name: entry for name, entry in STAGES.items()}


def signatures() -> dict[str, Signature]:
    """The stages' signatures, for :func:`openautoglm.core.workflow.check_graph`."""
    return {name: entry.signature() for name, entry in catalogue().items()}


def check_workflow(graph: WorkflowGraph) -> list[Node]:
    """The graph checked whole (see :func:`~openautoglm.core.workflow.check_graph`) and every node's pre-flight
    check run; the nodes in dependency order. Raises a one-line error naming the node."""
    order = check_graph(graph, signatures())
    stages = catalogue()
    for node in order:
        entry = stages[normalize_name(node.stage)]
        if entry.preflight is not None:
            try:
                entry.preflight(entry.check_params(node.params))
            except OpenAutoGLMError as error:
                raise WorkflowError(f"Node '{node.id}' ({entry.name}): {error.message}", hint=error.hint) from None
    return order


def workflow_problems(
    graph: WorkflowGraph,
    *,
    structural_only: bool = False,
    resolve: Callable[[BaseModel], BaseModel | None] | None = None,
) -> list[Problem]:
    """Every problem of ``graph`` (see :func:`~openautoglm.core.workflow.graph_problems`), each naming its node;
    unless ``structural_only``, the pre-flight check of every node whose parameters validate is run too — on
    ``resolve(params)`` where given (the API: paths resolved under the data roots), skipped where that is None."""
    problems = graph_problems(graph, signatures(), structural_only=structural_only)
    if structural_only:
        return problems
    stages = catalogue()
    failed = {p.node for p in problems if p.node is not None}
    for node in graph.nodes:
        entry = stages.get(normalize_name(node.stage))
        if entry is None or entry.preflight is None or node.id in failed:
            continue
        params = entry.check_params(node.params)
        checked = resolve(params) if resolve is not None else params
        if checked is None:
            continue
        try:
            entry.preflight(checked)
        except OpenAutoGLMError as error:
            problems.append(Problem(node.id, f"Node '{node.id}' ({entry.name}): {error.message}", error.hint, False))
    return problems


def export_stages() -> dict[str, Any]:
    """What :func:`~openautoglm.core.workflow_codegen.export_code` needs of every stage."""
    from openautoglm.core.workflow_codegen import ExportStage

    return {name: ExportStage(entry.name, dict(entry.task_options)) for name, entry in catalogue().items()}


def describe_catalogue() -> list[dict[str, Any]]:
    """Every stage as JSON, sorted by name."""
    return [entry.describe() for _, entry in sorted(catalogue().items())]


def port_summary(value: Any) -> Any:
    """A JSON-able summary of a port value (a dataset's counts, not its rows) for the run's summary file."""
    summary = getattr(value, "summary", None)
    if callable(summary):
        return summary()
    if isinstance(value, Mapping):
        return {str(k): port_summary(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [port_summary(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


__all__ = [
    "STAGES",
    "Port",
    "PortType",
    "Stage",
    "StageContext",
    "catalogue",
    "check_workflow",
    "describe_catalogue",
    "export_stages",
    "port_summary",
    "stage",
    "workflow_problems",
]
