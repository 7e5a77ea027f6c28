"""Task of the generic ``pipeline`` flow: one workflow node, i.e. one catalogue stage over its inputs.

The flow names each task run after its node and applies the stage's task options (retries, tags). Inputs arrive
as ``(upstream outputs, port)`` pairs so that Prefect sees every edge as a data dependency of the task run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from openautoglm.core.registry import normalize_name
from openautoglm.stages import StageContext, catalogue


def run_stage(
    stage: str,
    node: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, tuple[Mapping[str, Any], str]],
    folder: Path,
) -> dict[str, Any]:
    """Run ``stage`` for the node ``node``; returns the stage's outputs by port."""
    entry = catalogue()[normalize_name(stage)]
    values = {port: upstream[source_port] for port, (upstream, source_port) in inputs.items()}
    return entry.run(values, entry.check_params(params), StageContext(folder=folder, node=node))


stage_task = task(name="stage", cache_policy=NO_CACHE)(run_stage)
