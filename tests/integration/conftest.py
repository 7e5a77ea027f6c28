"""Integration fixtures: one real Prefect server for the session (the test harness), MLflow on a temp SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A real Prefect API server with a temporary database, shared by the whole session (about 15 s); flows run in
    this process send no heartbeats, as the CLI's (each would last at least a second)."""
    from prefect.testing.utilities import prefect_test_harness

    from openautoglm.flows.runtime import without_flow_heartbeats

    with prefect_test_harness(server_startup_timeout=90), without_flow_heartbeats():
        yield


def flow_run_artifact_list(flow_run_id: str) -> list[Any]:
    """Every artifact of a flow run (keyed or not), read back through the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return list(
            client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
            )
        )


def flow_run_artifacts(flow_run_id: str) -> dict[str, Any]:
    """Keyed artifacts of a flow run by key."""
    return {a.key: a for a in flow_run_artifact_list(flow_run_id) if a.key}


def task_run_names(flow_run_id: str) -> list[str]:
    """Names of the task runs of a flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return [r.name for r in runs]
