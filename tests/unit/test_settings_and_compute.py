from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from openautoglm.adapters import compute
from openautoglm.adapters.tracking import redact
from openautoglm.settings import Settings, get_settings


def test_defaults_live_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENAUTOGLM_HOME", str(tmp_path))
    settings = get_settings()
    assert settings.tracking_uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert settings.artifact_root == tmp_path.resolve() / "mlartifacts"
    assert settings.runs_dir == tmp_path.resolve() / "runs"
    assert settings.dask_address is None


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAUTOGLM_MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("OPENAUTOGLM_DASK_ADDRESS", "tcp://scheduler:8786")
    monkeypatch.setenv("OPENAUTOGLM_DASK_WORKERS", "3")
    settings = get_settings()
    assert settings.tracking_uri == "http://mlflow:5000"
    assert settings.dask_workers == 3
    plan = compute.plan_cluster(settings)
    assert plan.kind == "external" and plan.address == "tcp://scheduler:8786"


def test_local_cluster_plan_has_one_thread_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compute, "visible_gpus", lambda: 0)  # the same on a machine with GPUs
    plan = compute.plan_cluster(Settings(dask_workers=2))
    assert plan.kind == "local"
    kwargs = plan.cluster_kwargs
    assert kwargs["n_workers"] == 2 and kwargs["threads_per_worker"] == 1
    assert kwargs["dashboard_address"] == ":0"
    assert kwargs["env"]["OMP_NUM_THREADS"] == "1"


def test_cuda_cluster_is_chosen_when_gpus_are_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compute, "visible_gpus", lambda: 2)
    plan = compute.plan_cluster(Settings())
    assert plan.kind == "cuda" and plan.cluster_class == "dask_cuda.LocalCUDACluster"


def _fake_dask_cuda(monkeypatch: pytest.MonkeyPatch, get_n_gpus: Callable[[], int] | None) -> None:
    """Make ``dask_cuda.utils`` importable with ``get_n_gpus`` (or, with None, fail to import as without CUDA)."""
    if get_n_gpus is None:
        monkeypatch.setitem(sys.modules, "dask_cuda", None)  # import raises ImportError
        monkeypatch.setitem(sys.modules, "dask_cuda.utils", None)
        return
    package, utils = types.ModuleType("dask_cuda"), types.ModuleType("dask_cuda.utils")
    utils.get_n_gpus = get_n_gpus  # type: ignore[attr-defined]
    package.utils = utils  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dask_cuda", package)
    monkeypatch.setitem(sys.modules, "dask_cuda.utils", utils)


def _no_cuda() -> int:
    raise RuntimeError("no CUDA driver")


@pytest.mark.parametrize(
    ("get_n_gpus", "expected"),
    [(None, 0), (_no_cuda, 0), (lambda: 0, 0), (lambda: 3, 3)],
    ids=["extra-missing", "cuda-missing", "no-device", "three-devices"],
)
def test_visible_gpus_counts_what_dask_cuda_sees(
    monkeypatch: pytest.MonkeyPatch, get_n_gpus: Callable[[], int] | None, expected: int
) -> None:
    """The GPUs are simulated, so this holds on a machine with or without them."""
    _fake_dask_cuda(monkeypatch, get_n_gpus)
    assert compute.visible_gpus() == expected
    assert compute.plan_cluster(Settings()).kind == ("cuda" if expected else "local")


def test_secret_looking_params_are_redacted() -> None:
    assert redact({"api_key": "k", "db_password": "p", "Token": "t", "model": "glm-4"}) == {
        "api_key": "***",
        "db_password": "***",
        "Token": "***",
        "model": "glm-4",
    }


def test_api_concurrency_is_shared_out_between_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    from openautoglm.adapters.models import ModelSpec
    from openautoglm.adapters.models.run import per_worker

    monkeypatch.setenv("OPENAUTOGLM_DASK_WORKERS", "2")
    assert per_worker(ModelSpec(model="glm-4", max_concurrency=5)).max_concurrency == 2
    assert per_worker(ModelSpec(model="local-use", max_concurrency=5)).max_concurrency == 5
    monkeypatch.setenv("OPENAUTOGLM_TASK_RUNNER", "threads")
    assert per_worker(ModelSpec(model="glm-4", max_concurrency=5)).max_concurrency == 5
    monkeypatch.setenv("OPENAUTOGLM_TASK_RUNNER", "dask")
    monkeypatch.setenv("OPENAUTOGLM_DASK_ADDRESS", "tcp://elsewhere:8786")
    assert per_worker(ModelSpec(model="glm-4", max_concurrency=5)).max_concurrency == 5  # unknown: as given


def test_coarse_flows_run_on_threads_unless_an_external_scheduler_is_set() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from openautoglm.flows.runtime import task_runner

    assert isinstance(task_runner(Settings(), coarse=True), ThreadPoolTaskRunner)  # no LocalCluster per run
    assert isinstance(task_runner(Settings()), DaskTaskRunner)
    external = task_runner(Settings(dask_address="tcp://127.0.0.1:8786"), coarse=True)
    assert isinstance(external, DaskTaskRunner)
    assert isinstance(task_runner(Settings(task_runner="threads")), ThreadPoolTaskRunner)


def test_flows_run_in_this_process_send_no_heartbeats_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import get_current_settings

    from openautoglm.flows.runtime import without_flow_heartbeats

    monkeypatch.delenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", raising=False)
    monkeypatch.delenv("PREFECT_RUNNER_HEARTBEAT_FREQUENCY", raising=False)
    before = get_current_settings().flows.heartbeat_frequency
    with without_flow_heartbeats():
        assert get_current_settings().flows.heartbeat_frequency is None
    assert get_current_settings().flows.heartbeat_frequency == before
    monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "60")  # the user's choice stands
    with without_flow_heartbeats():
        assert get_current_settings().flows.heartbeat_frequency == before
