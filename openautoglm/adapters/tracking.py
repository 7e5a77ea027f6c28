"""MLflow tracking: experiments with an explicit artifact location, runs with secret-free params, run links."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openautoglm._env import apply_defaults
from openautoglm.settings import Settings, get_settings

apply_defaults()

import mlflow  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

log = logging.getLogger(__name__)

_SECRET_KEY = re.compile(r"(pass(word)?|secret|token|api[_-]?key|credential|private)", re.IGNORECASE)
REDACTED = "***"


def redact(params: Mapping[str, Any]) -> dict[str, Any]:
    """Replace values whose key looks secret (password, token, api_key...) so they never reach MLflow."""
    return {k: (REDACTED if _SECRET_KEY.search(k) else v) for k, v in params.items()}


@dataclass(frozen=True)
class TrackedRun:
    """Where an MLflow run lives."""

    run_id: str
    experiment_id: str
    url: str
    artifact_uri: str


def run_url(settings: Settings, experiment_id: str, run_id: str) -> str:
    """A browser link to the run: the tracking server itself if it is HTTP, else the local MLflow UI address."""
    uri = settings.tracking_uri
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else settings.mlflow_ui_url.rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


@contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """A file lock beside a SQLite tracking database while its tables are made.

    MLflow creates and migrates the tables when a process first opens the store; two flow runs starting together
    on a fresh database would race in those migrations (seen: ``CircularDependencyError`` in the second).
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    from filelock import FileLock

    path = Path(uri.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=300):
        yield


def ensure_experiment(name: str, settings: Settings | None = None) -> str:
    """The id of experiment ``name``, created with an artifact location under the artifact root if absent.

    The explicit location matters with a database tracking URI: MLflow would otherwise put artifacts in
    ``./mlruns`` of whatever folder the process started in.
    """
    settings = settings or get_settings()
    mlflow.set_tracking_uri(settings.tracking_uri)
    with _store_lock(settings.tracking_uri):
        client = MlflowClient()
        experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = (settings.artifact_root / name).as_uri()
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except mlflow.exceptions.MlflowException:
        # Another process created it between our lookup and create.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def registry_client(settings: Settings | None = None) -> MlflowClient:
    """A client of the tracking store and its Model Registry (a database store: SQLite, PostgreSQL...), with the
    store's tables made under the file lock if this process is the first to open it."""
    settings = settings or get_settings()
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    with _store_lock(settings.tracking_uri):
        client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
        client.search_registered_models(max_results=1)
    return client


@contextmanager
def tracked_run(
    experiment: str,
    run_name: str | None = None,
    *,
    tags: Mapping[str, str] | None = None,
    settings: Settings | None = None,
) -> Iterator[TrackedRun]:
    """Open an MLflow run (status FAILED if the body raises) and yield where it lives."""
    settings = settings or get_settings()
    experiment_id = ensure_experiment(experiment, settings)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags or {})) as run:
        yield TrackedRun(
            run_id=run.info.run_id,
            experiment_id=experiment_id,
            url=run_url(settings, experiment_id, run.info.run_id),
            artifact_uri=run.info.artifact_uri,
        )


def log_params(params: Mapping[str, Any]) -> None:
    """Log params with secret-looking keys redacted and long values cut to MLflow's 6000-character limit."""
    clean = {k: str(v)[:6000] for k, v in redact(params).items()}
    mlflow.log_params(clean)


def log_metrics(metrics: Mapping[str, float | int]) -> None:
    """Log numeric metrics (non-numbers are skipped with a debug message)."""
    numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
    mlflow.log_metrics(numeric)


@dataclass(frozen=True)
class ParentRun:
    """Where a child run belongs: passed to worker processes so they log their own nested runs."""

    tracking_uri: str
    experiment_id: str
    run_id: str


def supports_parallel_writers(tracking_uri: str) -> bool:
    """SQLite serialises writers (and MLflow's store then fails with 'database is locked'); a tracking server or
    PostgreSQL/MySQL takes parallel writers."""
    return not tracking_uri.startswith("sqlite:")


def log_child_run(
    parent: ParentRun,
    name: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str] | None = None,
) -> str:
    """Create, fill and close a nested run under ``parent`` from any process; returns its run id."""
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(parent.tracking_uri)
    run = client.create_run(
        parent.experiment_id, run_name=name, tags={"mlflow.parentRunId": parent.run_id, **dict(tags or {})}
    )
    now = int(time.time() * 1000)
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if isinstance(v, int | float)],
        params=[Param(k, str(v)[:6000]) for k, v in redact(params).items()],
        tags=[RunTag("openautoglm.child", "true")],
    )
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)
