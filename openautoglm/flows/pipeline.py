"""Flow ``pipeline``: run a workflow graph of catalogue stages, one task run per node, edges as data dependencies.

The graph is checked whole before any task runs (unknown stage, bad parameters, missing input, port type
mismatch, cycle: one error naming the node). Each node's outputs are summarised in ``summary.json``; Metrics
outputs are logged to MLflow as ``<node>.<metric>``. Parameters, result and the run's end: ``pipeline_params``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from openautoglm.core.registry import normalize_name
from openautoglm.core.workflow import inputs_of, lineage_keys
from openautoglm.flows.pipeline_node import stage_task
from openautoglm.flows.pipeline_params import (
    PipelineParams,
    PipelineResult,
    drop_kept_results,
    finish_pipeline,
    kept_key,
)
from openautoglm.flows.runtime import task_runner, tracked_flow
from openautoglm.stages import catalogue, check_workflow

#: What an exported workflow file imports (core/workflow_codegen.py): keep these names here.
__all__ = ["PipelineParams", "PipelineResult", "finish_pipeline", "pipeline", "stage_task"]


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
