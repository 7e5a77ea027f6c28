"""Flow ``pipeline``: run a workflow graph of catalogue stages, one task run per node, edges as data dependencies.

The graph is checked whole before any task runs (unknown stage, bad parameters, missing input, port type
mismatch, cycle: one error naming the node). Each node's outputs are summarised in ``summary.json``; Metrics
outputs are logged to MLflow as ``<node>.<metric>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict, Field

from openautoglm.adapters.tracking import log_metrics
from openautoglm.core.registry import normalize_name
from openautoglm.core.workflow import WorkflowGraph, inputs_of, lineage_keys
from openautoglm.flows.runtime import RunTail, TrackedFlow, task_runner, tracked_flow
from openautoglm.stages import PortType, catalogue, check_workflow, port_summary
from openautoglm.tasks.pipeline import stage_task


class PipelineParams(BaseModel):
    """Parameters of the ``pipeline`` flow: the workflow graph and where its outputs go."""

    model_config = ConfigDict(extra="forbid")

    graph: WorkflowGraph = Field(description="Nodes (stage + parameters) and edges (node.output -> node.input).")
    output_dir: Path | None = Field(default=None, description="Output folder (default: a new one under home).")
    experiment: str = Field(default="pipeline", min_length=1, description="MLflow experiment name.")


class PipelineResult(RunTail):
    """What each node produced (summaries, not rows) and where the run's files are."""

    order: list[str]
    outputs: dict[str, dict[str, Any]]
    summary_path: Path


@flow(name="pipeline", task_runner=task_runner(coarse=True), log_prints=True)
def pipeline(params: PipelineParams) -> PipelineResult:
    """Run a workflow graph of catalogue stages."""
    logger = get_run_logger()
    graph = params.graph
    order = check_workflow(graph)
    stages = catalogue()
    logger.info("pipeline of %d nodes: %s", len(order), " -> ".join(n.id for n in order))
    nodes = {"nodes": [f"{n.id}:{n.stage}" for n in order], "edges": [f"{e.source}->{e.target}" for e in graph.edges]}
    with tracked_flow("pipeline", params.experiment, output_dir=params.output_dir, params=nodes) as tracked:
        futures: dict[str, Any] = {}
        keys = lineage_keys(graph)
        for node in order:
            entry = stages[normalize_name(node.stage)]
            inputs = {port: (futures[src], out) for port, (src, out) in inputs_of(graph, node.id).items()}
            runner = stage_task.with_options(
                name=entry.name,
                task_run_name=node.id,
                persist_result=True,
                **entry.task_options,
            )
            futures[node.id] = runner.submit(
                node.stage, node.id, node.params, inputs, tracked.folder, cache_key=kept_key(keys[node.id])
            )
        result = finish_pipeline(tracked, {n.id: n.stage for n in order}, futures)
        drop_kept_results([kept_key(k) for k in keys.values()])
    logger.info("pipeline finished in %.1f s -> %s", result.seconds, result.folder)
    return result


def kept_key(lineage: str) -> str:
    """Where a node's result is kept for a retry of this flow run: the flow run and the node's lineage."""
    return f"{flow_run.id or 'local'}-{lineage}"


def drop_kept_results(keys: list[str]) -> None:
    """A run that finished needs no kept results: remove them from the (local) result storage."""
    from prefect.filesystems import LocalFileSystem
    from prefect.results import get_default_result_storage

    storage = get_default_result_storage()
    if isinstance(storage, LocalFileSystem):
        for key in keys:
            (Path(storage.basepath).expanduser() / key).unlink(missing_ok=True)


def finish_pipeline(tracked: TrackedFlow, stages: Mapping[str, str], futures: Mapping[str, Any]) -> PipelineResult:
    """The end of a pipeline run (this flow's, or an exported workflow's): wait for every node, log its Metrics
    outputs to MLflow as ``<node>.<metric>``, and write ``summary.json``.

    Args:
        tracked: The run's frame (:func:`~openautoglm.flows.runtime.tracked_flow`).
        stages: Node id -> stage, in the order the nodes ran.
        futures: Node id -> the future of its task run.
    """
    catalogued = catalogue()
    outputs = {node_id: futures[node_id].result() for node_id in stages}
    for node_id, stage in stages.items():
        for port in catalogued[normalize_name(stage)].outputs:
            if port.type is PortType.METRICS:
                log_metrics({f"{node_id}.{k}": v for k, v in (outputs[node_id][port.name] or {}).items()})
    summaries = {node_id: port_summary(value) for node_id, value in outputs.items()}
    result = PipelineResult(
        order=list(stages),
        outputs=summaries,
        summary_path=tracked.folder / "summary.json",
        **tracked.tail(),
    )
    tracked.summarise(result)
    return result
