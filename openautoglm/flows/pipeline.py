"""Flow ``pipeline``: run a workflow graph of catalogue stages, one task run per node, edges as data dependencies.

The graph is checked whole before any task runs (unknown stage, bad parameters, missing input, port type
mismatch, cycle: one error naming the node). Each node's outputs are summarised in ``summary.json``; Metrics
outputs are logged to MLflow as ``<node>.<metric>``. Parameters, result and the run's end: ``pipeline_params``.

Each node's result is kept under its lineage key (stage, parameters, upstream lineage; scoped by the run's owner
and workflow): a retry of the run, or a new run with ``reuse`` naming an earlier one (a re-run from a changed
node), finds the unchanged nodes' results there (task runs in state ``Cached``) and runs only the changed nodes and
what follows them. Results older than ``OPENAUTOGLM_PIPELINE_KEEP_RESULTS_S`` are removed when a run ends.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from openautoglm.core.registry import normalize_name
from openautoglm.core.workflow import inputs_of, lineage_keys
from openautoglm.flows.pipeline_node import publish_cached, stage_task
from openautoglm.flows.pipeline_params import (
    PipelineParams,
    PipelineResult,
    finish_pipeline,
    kept_key,
    prune_kept_results,
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
        wired: dict[str, dict[str, Any]] = {}
        keys = lineage_keys(graph)
        for node in order:
            entry = stages[normalize_name(node.stage)]
            inputs = {port: (futures[src], out) for port, (src, out) in inputs_of(graph, node.id).items()}
            wired[node.id] = inputs
            runner = stage_task.with_options(
                name=entry.name,
                task_run_name=node.id,
                persist_result=True,
                **entry.task_options,
            )
            futures[node.id] = runner.submit(
                node.stage,
                node.id,
                node.params,
                inputs,
                tracked.folder,
                cache_key=kept_key(keys[node.id], params.reuse),
            )
        result = finish_pipeline(tracked, {n.id: n.stage for n in order}, futures)
        cached = publish_cached({n.id: n.stage for n in order}, futures, wired)
        if cached:
            logger.info("reused (cached, not run again): %s", ", ".join(cached))
        prune_kept_results()
    logger.info("pipeline finished in %.1f s -> %s", result.seconds, result.folder)
    return result
