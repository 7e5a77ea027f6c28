"""Task of the generic ``pipeline`` flow, kept beside its only runner: one workflow node, i.e. one catalogue stage
over its inputs.

The flow names each task run after its node and applies the stage's task options (retries, tags). Inputs arrive
as ``(upstream outputs, port)`` pairs so that Prefect sees every edge as a data dependency of the task run.
Each finished node publishes a table artifact (description ``node:<id>``) with the summary of every input and
output port and the first rows of its dataset outputs: what the canvas shows as the node's rows and preview.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_table_artifact

from openautoglm.core.registry import normalize_name
from openautoglm.stages import PortType, StageContext, catalogue, port_summary

#: Rows of a dataset output shown in its node's preview.
PREVIEW_ROWS = 5
#: Port types whose rows are counted as a node's rows in and out (a report's counts are not rows).
ROW_PORTS = frozenset({PortType.DATASET.value, PortType.PREDICTIONS.value})
#: The description that ties a node artifact to its node (read back by the API's workflow-run route).
NODE_ARTIFACT_PREFIX = "node:"


def run_stage(
    stage: str,
    node: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, tuple[Mapping[str, Any], str]],
    folder: Path,
) -> dict[str, Any]:
    """Run ``stage`` for the node ``node``; returns the stage's outputs by port."""
    entry = catalogue()[normalize_name(stage)]
    return entry.run(_values(inputs), entry.check_params(params), StageContext(folder=folder, node=node))


def _values(inputs: Mapping[str, tuple[Mapping[str, Any], str]]) -> dict[str, Any]:
    """Each input port's value: the named output of its upstream node."""
    return {port: upstream[source_port] for port, (upstream, source_port) in inputs.items()}


def node_report(stage: str, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per port: direction, port, type, its summary and (dataset-like outputs) its first rows, as JSON."""
    entry = catalogue()[normalize_name(stage)]
    rows = []
    for direction, ports, values in (("in", entry.inputs, inputs), ("out", entry.outputs, outputs)):
        for port in ports:
            if port.name not in values:
                continue
            value = values[port.name]
            preview = getattr(value, "preview", None)
            rows.append(
                {
                    "direction": direction,
                    "port": port.name,
                    "type": port.type.value,
                    "summary": json.dumps(port_summary(value), ensure_ascii=False, default=str),
                    "head": json.dumps(preview(PREVIEW_ROWS), ensure_ascii=False, default=str)
                    if direction == "out" and callable(preview)
                    else "",
                }
            )
    return rows


def read_node_report(rows: Any) -> dict[str, Any]:
    """The inverse of :func:`node_report` (a table artifact's data, as a JSON string or rows): ``{"inputs": {port:
    summary}, "outputs": {port: summary}, "preview": {port: rows}, "rows_in": n, "rows_out": n}``."""
    if isinstance(rows, str):
        rows = json.loads(rows)
    report: dict[str, Any] = {"inputs": {}, "outputs": {}, "preview": {}, "rows_in": None, "rows_out": None}
    for row in rows or []:
        summary = json.loads(row.get("summary") or "null")
        side = "inputs" if row.get("direction") == "in" else "outputs"
        report[side][row["port"]] = summary
        if row.get("head"):
            report["preview"][row["port"]] = json.loads(row["head"])
        count = _rows(summary) if row.get("type") in ROW_PORTS else None
        key = "rows_in" if side == "inputs" else "rows_out"
        if count is not None:
            report[key] = (report[key] or 0) + count
    return report


def _rows(summary: Any) -> int | None:
    """Rows of a dataset-like summary (``rows_out`` of a dataset, ``rows`` of predictions), else None."""
    if isinstance(summary, Mapping):
        for key in ("rows_out", "rows"):
            if isinstance(summary.get(key), int):
                return int(summary[key])
    return None


def publish_cached(
    stages: Mapping[str, str], futures: Mapping[str, Any], inputs: Mapping[str, Mapping[str, tuple[Any, str]]]
) -> list[str]:
    """Publish the node artifact of each node whose result came from the cache (its task run's state ``Cached``:
    its body did not run, so it published none); returns those nodes. Call once every future is done.

    Args:
        stages: Node id -> stage.
        futures: Node id -> the future of its task run.
        inputs: Node id -> its inputs as the flow submitted them (port -> (upstream future, output port)).
    """
    cached = []
    for node, stage in stages.items():
        state = futures[node].state
        if state.name != "Cached":
            continue
        values = {port: upstream.result()[out] for port, (upstream, out) in inputs[node].items()}
        report = node_report(stage, values, futures[node].result())
        create_table_artifact(report, description=f"{NODE_ARTIFACT_PREFIX}{node}")
        cached.append(node)
    return cached


def _given_key(context: Any, parameters: Mapping[str, Any]) -> str | None:
    """The cache key the flow chose for the node (None: not cached)."""
    key = parameters.get("cache_key")
    return str(key) if key else None


@task(name="stage", cache_key_fn=_given_key, persist_result=False)  # the pipeline flow persists, in its folder
def stage_task(
    stage: str,
    node: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, tuple[Mapping[str, Any], str]],
    folder: Path,
    cache_key: str | None = None,
) -> dict[str, Any]:
    """One workflow node as a task run; publishes its node artifact when it finishes. With a ``cache_key`` (the
    pipeline flow gives one made of the node's lineage, scoped by owner, workflow and flow run or the run it
    re-runs) and a persisted result, a retry or a re-run reuses the node's result instead of running it again."""
    outputs = run_stage(stage, node, params, inputs, folder)
    create_table_artifact(node_report(stage, _values(inputs), outputs), description=f"{NODE_ARTIFACT_PREFIX}{node}")
    return outputs
