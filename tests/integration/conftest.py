"""Integration fixtures: one real Prefect server for the session (on PostgreSQL, or the SQLite test harness), MLflow
on a temp SQLite."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import in_ci, port_open
from tests.integration.servers import postgres_database
from tests.integration.servers import prefect_server as serve_prefect


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A real Prefect API server shared by the whole session; flows run in this process send no heartbeats, as the
    CLI's (each would last at least a second).

    On the machine's PostgreSQL (a fresh database) where it listens, and always in CI: Prefect's SQLite-backed
    server often answers a flow run created right after another with 503 while it records the earlier run's task
    states, and the client waits about 2 s before it retries (measured: 5 retries, 9 s of a 101-s run of two test
    files; none on PostgreSQL). Elsewhere, Prefect's SQLite test harness.
    """
    from openautoglm.flows.runtime import without_flow_heartbeats

    with _session_api(tmp_path_factory.mktemp("prefect-server")), without_flow_heartbeats():
        yield


@contextmanager
def _session_api(home: Path) -> Iterator[None]:
    if not (in_ci() or port_open("127.0.0.1", 5432)):
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=90):
            yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with postgres_database() as name:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        with serve_prefect(home, database_url=url) as api_url, temporary_settings(updates={PREFECT_API_URL: api_url}):
            try:
                yield
            finally:
                _drain_to_api()


def _drain_to_api() -> None:
    """Send the logs and events still queued in this process before the server stops (as Prefect's harness does)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        try:
            pending = APILogWorker.instance().drain()
            if inspect.isawaitable(pending):
                await pending
        except RuntimeError:  # never started
            pass
        pending = EventsWorker.drain_all()
        if inspect.isawaitable(pending):
            await pending

    run_coro_as_sync(drain())


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
