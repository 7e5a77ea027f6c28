"""MLflow tracking: experiments with an explicit artifact location, runs with secret-free params, run links."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
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
    tracking_uri: str = ""

    def handle(self) -> ParentRun:
        """This run as tasks on other threads or processes can log to it (:func:`log_to_run`, child runs)."""
        return ParentRun(self.tracking_uri or get_settings().tracking_uri, self.experiment_id, self.run_id)


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


def point_mlflow(settings: Settings) -> None:
    """Point MLflow's tracking AND registry URIs at the settings' store. MLflow exports both as environment
    variables that child processes (a Prefect worker's flow runs) inherit, so setting only the tracking URI would
    leave a registry URI inherited from whoever started the process: a model registered there, tagged here."""
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)


def ensure_experiment(name: str, settings: Settings | None = None) -> str:
    """The id of experiment ``name``, created with an artifact location under the artifact root if absent.

    The explicit location matters with a database tracking URI: MLflow would otherwise put artifacts in
    ``./mlruns`` of whatever folder the process started in.
    """
    settings = settings or get_settings()
    point_mlflow(settings)
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
    point_mlflow(settings)
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
            tracking_uri=settings.tracking_uri,
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


def _entities(
    metrics: Mapping[str, Any], params: Mapping[str, Any], tags: Mapping[str, Any]
) -> tuple[list[Any], list[Any], list[Any]]:
    """MLflow's Metric, Param and RunTag entities for one batch: numeric metrics only (at this time, step 0),
    params with secret-looking keys redacted and cut to 6,000 characters, tags cut to 5,000."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    return (
        [Metric(k, float(v), now, 0) for k, v in metrics.items() if isinstance(v, int | float)],
        [Param(k, str(v)[:6000]) for k, v in redact(params).items()],
        [RunTag(k, str(v)[:5000]) for k, v in tags.items()],
    )


def log_child_run(
    parent: ParentRun,
    name: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str] | None = None,
) -> str:
    """Create, fill and close a nested run under ``parent`` from any process; returns its run id."""
    client = MlflowClient(parent.tracking_uri)
    run = client.create_run(
        parent.experiment_id, run_name=name, tags={"mlflow.parentRunId": parent.run_id, **dict(tags or {})}
    )
    numeric, named, marks = _entities(metrics, params, {"openautoglm.child": "true"})
    client.log_batch(run.info.run_id, metrics=numeric, params=named, tags=marks)
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


def log_to_run(
    run: ParentRun,
    metrics: Mapping[str, float | int],
    artifacts: Sequence[Path] = (),
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    """Log numeric metrics, params (secret-looking keys redacted), tags and files to an open run from any thread
    or process (MLflow's active run is the flow thread's only)."""
    client = MlflowClient(run.tracking_uri)
    numeric, named, marks = _entities(metrics, params or {}, tags or {})
    for start in range(0, max(len(numeric), len(named), len(marks), 1), 100):  # within MLflow's batch limits
        end = start + 100
        client.log_batch(run.run_id, metrics=numeric[start:end], params=named[start:end], tags=marks[start:end])
    for path in artifacts:
        client.log_artifact(run.run_id, str(path))


# --- input datasets (the run page's "Datasets") ---------------------------------------------------------------

_MLFLOW_TYPES = {"i": "long", "u": "long", "f": "double", "b": "boolean"}


def frame_digest(frame: Any) -> str:
    """A content digest of a DataFrame: BLAKE2b over the column names, the row count and each column's values —
    a text column as its validity, byte lengths and UTF-8 bytes in Arrow's layout (no copy of the strings), any
    other column as pandas' vectorised per-row hashes; 16 hex digits. Same rows in the same order, same digest,
    however the frame was sliced or chunked (0.02 s for 52k review rows; hashing every text with pandas took 4x)."""
    import hashlib

    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    digest = hashlib.blake2b(digest_size=8)
    digest.update("\x1f".join(map(str, frame.columns)).encode("utf-8"))
    digest.update(str(len(frame)).encode())
    for name in frame.columns:
        series = frame[name]
        if not (pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(series.dtype)):
            digest.update(pd.util.hash_pandas_object(series, index=False).to_numpy().tobytes())
            continue
        values = pa.array(series, type=pa.large_string(), from_pandas=True)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        digest.update(pc.is_valid(values).to_numpy(zero_copy_only=False).tobytes())
        digest.update(pc.binary_length(values).fill_null(0).to_numpy(zero_copy_only=False).tobytes())
        _, offsets, data = values.buffers()
        if len(values) and offsets is not None and data is not None:
            bounds = np.frombuffer(offsets, dtype=np.int64)[[values.offset, values.offset + len(values)]]
            digest.update(memoryview(data)[int(bounds[0]) : int(bounds[1])])
    return digest.hexdigest()


def log_dataset(
    frame: Any,
    *,
    name: str,
    source: str,
    source_type: str,
    context: str,
    tags: Mapping[str, Any] | None = None,
    skip_columns: tuple[str, ...] = (),
    run_id: str | None = None,
) -> str:
    """Log ``frame`` as an input dataset of the active (or given) MLflow run without copying or uploading it: its
    digest (:func:`frame_digest`), a schema from the dtypes (no inference over the rows), the row count, where it
    came from (``source``: a secret-free description) and ``tags`` (e.g. row counts). Returns the digest.

    ``mlflow.data.from_pandas`` would infer the schema over the rows and digest only the first 10,000 of them.
    """
    import json

    from mlflow.entities import Dataset as DatasetEntity
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    columns = [c for c in frame.columns if c not in skip_columns]
    schema = [
        {"type": _MLFLOW_TYPES.get(frame[c].dtype.kind, "string"), "name": str(c), "required": True} for c in columns
    ]
    digest = frame_digest(frame)
    entity = DatasetEntity(
        name=name[:500],
        digest=digest,
        source_type=source_type,
        source=json.dumps({"uri": source}, ensure_ascii=False),
        schema=json.dumps({"mlflow_colspec": schema}, ensure_ascii=False),
        profile=json.dumps({"num_rows": len(frame), "num_elements": len(frame) * len(columns)}),
    )
    input_tags = [InputTag(MLFLOW_DATASET_CONTEXT, context)] + [
        InputTag(str(k), str(v)[:500]) for k, v in redact(tags or {}).items()
    ]
    target = run_id or mlflow.active_run().info.run_id  # type: ignore[union-attr]
    MlflowClient().log_inputs(target, datasets=[DatasetInput(entity, tags=input_tags)])
    return digest
