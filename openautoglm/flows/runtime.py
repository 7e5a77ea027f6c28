"""What every flow shares: its task runner, its output folder, and the link between a flow run and MLflow."""

from __future__ import annotations

import datetime as dt
import glob
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from prefect.artifacts import create_link_artifact
from prefect.runtime import flow_run
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from pydantic import BaseModel

from openautoglm.adapters.compute import plan_cluster
from openautoglm.adapters.run_metrics import deployment_name, push_run_metrics
from openautoglm.adapters.sinks import write_json
from openautoglm.adapters.tracking import ParentRun, TrackedRun, log_params, tracked_run
from openautoglm.settings import Settings, get_settings

log = logging.getLogger(__name__)


def task_runner(settings: Settings | None = None, *, coarse: bool = False) -> TaskRunner:  # type: ignore[type-arg]
    """The task runner for flows: Dask (external scheduler, dask-cuda or a LocalCluster), or threads.

    Read when a flow module is imported, so set ``OPENAUTOGLM_DASK_ADDRESS`` / ``OPENAUTOGLM_TASK_RUNNER``
    before that (workers and the CLI do), or use ``flow.with_options(task_runner=task_runner())``.

    Args:
        coarse: The flow's tasks are whole stages, few and mostly in a chain (the pipeline flow): threads in the
            flow process unless an external scheduler is configured — a LocalCluster per run would cost its
            start (about 5 s here) and a stage import in each worker for no parallelism.
    """
    settings = settings or get_settings()
    plan = plan_cluster(settings)
    if settings.task_runner == "threads" or (coarse and plan.kind != "external"):
        return ThreadPoolTaskRunner(max_workers=settings.dask_workers)
    from prefect_dask import DaskTaskRunner

    if plan.kind == "external":
        return DaskTaskRunner(address=plan.address)
    factory = cuda_cluster if plan.kind == "cuda" else local_cluster
    return DaskTaskRunner(cluster_class=factory, cluster_kwargs=dict(plan.cluster_kwargs))


def runs_in_processes() -> bool:
    """Whether the current flow run's task runner runs tasks in other processes (Dask), not threads of this one."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return context is not None and not isinstance(context.task_runner, ThreadPoolTaskRunner)


def _with_prefect_api(kwargs: dict[str, Any]) -> dict[str, Any]:
    # Worker processes must report task runs to the flow's Prefect server. Without PREFECT_API_URL each
    # worker would start an ephemeral server of its own (5 s each, and the task runs land in another DB).
    # Read here, when the flow run starts the cluster, because the ephemeral server's URL is known only then.
    env = dict(kwargs.get("env") or {})
    api_url = PREFECT_API_URL.value()
    if not api_url:  # ephemeral mode: the temporary server this process started
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        api_url = server.api_url if server.running else None
    if api_url:
        env.setdefault("PREFECT_API_URL", api_url)
    return {**kwargs, "env": env}


@contextmanager
def without_flow_heartbeats() -> Iterator[None]:
    """Flows run in this process inside the block send no flow-run heartbeats (unless the environment sets
    ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``).

    Prefect's engine gives every flow run a heartbeat thread that sleeps in one-second steps and joins it when the
    run ends, so a run lasts at least about a second: an empty flow takes 1.07 s here, 0.065 s without. The
    heartbeats feed Prefect's detection of crashed runs that a worker started; runs started by a worker
    (deployments) are not in this process and keep them. The CLI, the test harness and the benchmarks run their
    flows in here.
    """
    if {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY"} & set(os.environ):
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def local_cluster(**kwargs: Any) -> Any:
    """A ``distributed.LocalCluster`` whose workers report to this process's Prefect server."""
    from distributed import LocalCluster

    return LocalCluster(**_with_prefect_api(kwargs))


def cuda_cluster(**kwargs: Any) -> Any:
    """A ``dask_cuda.LocalCUDACluster`` (one worker per GPU) whose workers report to this Prefect server."""
    from dask_cuda import LocalCUDACluster  # type: ignore[import-not-found]

    return LocalCUDACluster(**_with_prefect_api(kwargs))


def run_folder(kind: str, settings: Settings | None = None, explicit: Path | None = None) -> Path:
    """``explicit`` if given, else ``$HOME/runs/<kind>/<UTC time>-<flow run name>``; a retried flow run (its
    second attempt or later) goes on in the folder of its first attempt, where its kept results are."""
    if explicit is not None:
        return explicit.expanduser().resolve()
    settings = settings or get_settings()
    name = flow_run.name or "local"
    if flow_run.id is not None and (flow_run.run_count or 1) > 1:
        earlier = sorted((settings.runs_dir / kind).glob(f"*-{glob.escape(name)}"))
        if earlier:
            return earlier[-1]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return settings.runs_dir / kind / f"{stamp}-{name}"


def flow_run_tags() -> dict[str, str]:
    """MLflow tags that point back at the current Prefect flow run."""
    run_id = flow_run.id
    if run_id is None:
        return {}
    tags = {"prefect.flow_run_id": str(run_id), "prefect.flow_run_name": str(flow_run.name)}
    tags["prefect.flow_run_url"] = flow_run_ui_url() or ""
    return tags


def flow_run_ui_url() -> str | None:
    """The current flow run's page in the Prefect UI.

    Without a configured UI (ephemeral mode) it is the page that ``prefect server start`` will serve, since that
    server opens the same database.
    """
    run_id = flow_run.id
    if run_id is None:
        return None
    base = PREFECT_UI_URL.value() or "http://127.0.0.1:4200"
    return f"{base.rstrip('/')}/runs/flow-run/{run_id}"


def link_mlflow_run(run: TrackedRun, what: str) -> None:
    """Leave a Prefect link artifact on the flow run pointing at its MLflow run."""
    create_link_artifact(
        key="mlflow-run",
        link=run.url,
        link_text=f"MLflow run {run.run_id[:8]}",
        description=f"{what}: MLflow run {run.run_id} (experiment {run.experiment_id}); artifacts at "
        f"{run.artifact_uri}",
    )


class RunTail(BaseModel):
    """The fields every flow's result ends with: where its files are, its MLflow and Prefect runs, its time."""

    folder: Path
    mlflow_run_id: str
    mlflow_run_url: str
    flow_run_id: str | None
    flow_run_url: str | None
    seconds: float


@dataclass(frozen=True)
class TrackedFlow:
    """A flow run in progress: its result folder and MLflow run (see :func:`tracked_flow`)."""

    kind: str
    folder: Path
    run: TrackedRun
    started: float

    def tail(self) -> dict[str, Any]:
        """The :class:`RunTail` fields, the time taken so far included."""
        return {
            "folder": self.folder,
            "mlflow_run_id": self.run.run_id,
            "mlflow_run_url": self.run.url,
            "flow_run_id": str(flow_run.id) if flow_run.id else None,
            "flow_run_url": flow_run_ui_url(),
            "seconds": time.perf_counter() - self.started,
        }

    def handle(self) -> ParentRun:
        """The MLflow run as tasks on other threads or processes can log to it."""
        return self.run.handle()

    def summarise(self, result: BaseModel, name: str = "summary.json") -> Path:
        """Write ``result`` as the run's summary file and log it to the MLflow run."""
        path = write_json(self.folder / name, result.model_dump(mode="json"))
        mlflow.log_artifact(str(path))
        return path

    def push(self, metrics: Mapping[str, float | int | None]) -> None:
        """Push the run's headline figures to the Prometheus Pushgateway (when one is configured)."""
        if get_settings().pushgateway_url:  # the deployment's name is an API call: only when there is a gateway
            push_run_metrics(self.kind, metrics, deployment_name())


@contextmanager
def tracked_flow(
    kind: str,
    experiment: str,
    *,
    output_dir: Path | None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    what: str | None = None,
) -> Iterator[TrackedFlow]:
    """The frame of every flow: its result folder, an MLflow run tagged with the flow run (a link artifact back
    to it), the parameters logged (secret-looking keys redacted). The run ends FAILED if the body raises."""
    started = time.perf_counter()
    folder = run_folder(kind, explicit=output_dir)
    all_tags = {**flow_run_tags(), "openautoglm.flow": kind, **(tags or {})}
    with tracked_run(experiment, run_name=flow_run.name, tags=all_tags) as run:
        link_mlflow_run(run, what or kind)
        if params:
            log_params(params)
        yield TrackedFlow(kind, folder, run, started)
