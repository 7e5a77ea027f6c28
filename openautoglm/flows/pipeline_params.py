"""The ``pipeline`` flow's parameters and result, and the end of a pipeline run (shared with exported workflows)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict, Field

from openautoglm.adapters.tracking import log_metrics
from openautoglm.core.registry import normalize_name
from openautoglm.core.workflow import WorkflowGraph
from openautoglm.flows.runtime import RunTail, TrackedFlow
from openautoglm.settings import get_settings
from openautoglm.stages import PortType, catalogue, port_summary


class PipelineParams(BaseModel):
    """Parameters of the ``pipeline`` flow: the workflow graph and where its outputs go."""

    model_config = ConfigDict(extra="forbid")

    graph: WorkflowGraph = Field(description="Nodes (stage + parameters) and edges (node.output -> node.input).")
    output_dir: Path | None = Field(default=None, description="Output folder (default: a new one under home).")
    experiment: str = Field(default="pipeline", min_length=1, description="MLflow experiment name.")
    reuse: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="An earlier flow run of the same workflow (and owner) whose node results are reused where a "
        "node's lineage (stage, parameters, upstream lineage) is unchanged: a re-run from a changed node. Default: "
        "this flow run's own (a retry reuses the nodes that finished).",
    )


class PipelineResult(RunTail):
    """What each node produced (summaries, not rows) and where the run's files are."""

    order: list[str]
    outputs: dict[str, dict[str, Any]]
    summary_path: Path


#: Where kept node results are named in the result storage (what :func:`prune_kept_results` may remove).
KEPT_PREFIX = "pipeline-"
#: The flow run's tags that scope its kept results: its owner and its workflow (the API's ``OWNER_TAG`` and
#: ``WORKFLOW_TAG``), so one owner's run never reads another's results, nor one workflow another's.
SCOPE_TAGS = ("openautoglm-owner:", "openautoglm-workflow:")


def kept_key(lineage: str, reuse: str | None = None) -> str:
    """Where a node's result is kept: the node's lineage, within the flow run's owner and workflow and ``reuse``
    (the earlier run it is a re-run of) or else this flow run (a retry of it)."""
    scope = sorted(t for t in (flow_run.tags or []) if t.startswith(SCOPE_TAGS))
    canonical = "\n".join([*scope, reuse or flow_run.id or "local", lineage])
    return KEPT_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]


def prune_kept_results(max_age_s: float | None = None) -> int:
    """Remove kept node results older than ``max_age_s`` (default ``OPENAUTOGLM_PIPELINE_KEEP_RESULTS_S``) from
    the (local) result storage; a run's results stay that long for a re-run from one of its nodes. Returns how many
    were removed."""
    from prefect.filesystems import LocalFileSystem
    from prefect.results import get_default_result_storage

    storage = get_default_result_storage()
    if not isinstance(storage, LocalFileSystem):
        return 0
    oldest = time.time() - (max_age_s if max_age_s is not None else get_settings().pipeline_keep_results_s)
    removed = 0
    for path in Path(storage.basepath).expanduser().glob(f"{KEPT_PREFIX}*"):
        try:
            if path.is_file() and path.stat().st_mtime < oldest:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another run pruned it first
            continue
    return removed


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
