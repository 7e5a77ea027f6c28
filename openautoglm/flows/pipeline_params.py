"""The ``pipeline`` flow's parameters and result, and the end of a pipeline run (shared with exported workflows)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict, Field

from openautoglm.adapters.tracking import log_metrics
from openautoglm.core.registry import normalize_name
from openautoglm.core.workflow import WorkflowGraph
from openautoglm.flows.runtime import RunTail, TrackedFlow
from openautoglm.stages import PortType, catalogue, port_summary


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
