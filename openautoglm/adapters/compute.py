"""Which Dask cluster to run on: an external scheduler, a CUDA cluster when GPUs are visible, or a LocalCluster.

Pure planning (no Prefect here); :mod:`openautoglm.flows.runtime` turns a plan into a Prefect task runner.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from openautoglm.settings import Settings

log = logging.getLogger(__name__)

#: Environment of every LocalCluster worker process: one OpenMP/BLAS thread each. With the default thread
#: count a 2-layer GCN on KarateClub took 150 ms/epoch on 2 cores; with one thread, 2.8 ms.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@dataclass(frozen=True)
class ClusterPlan:
    """Where tasks will run.

    Attributes:
        kind: ``external`` (connect to ``address``), ``cuda`` (dask_cuda.LocalCUDACluster, one worker per GPU)
            or ``local`` (distributed.LocalCluster).
        address: Scheduler address for ``external``.
        cluster_class: Qualified class name for ``local``/``cuda``.
        cluster_kwargs: Keyword arguments for the cluster class.
    """

    kind: Literal["external", "cuda", "local"]
    address: str | None = None
    cluster_class: str | None = None
    cluster_kwargs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for logs."""
        if self.kind == "external":
            return f"Dask scheduler at {self.address}"
        workers = self.cluster_kwargs.get("n_workers", "one per GPU")
        return f"{self.cluster_class} ({workers} workers)"


def visible_gpus() -> int:
    """GPUs dask-cuda can use; 0 when the ``[gpu]`` extra is missing or no CUDA device is visible."""
    try:
        from dask_cuda.utils import get_n_gpus  # type: ignore[import-not-found, unused-ignore]
    except Exception:  # ImportError, or CUDA libraries missing: dask_cuda fails to import without CUDA
        return 0
    try:
        return int(get_n_gpus())
    except Exception:
        return 0


def plan_cluster(settings: Settings) -> ClusterPlan:
    """Choose the cluster: ``OPENAUTOGLM_DASK_ADDRESS`` wins, then GPUs, then a LocalCluster."""
    if settings.dask_address:
        return ClusterPlan(kind="external", address=settings.dask_address)
    gpus = visible_gpus()
    if gpus:
        return ClusterPlan(
            kind="cuda",
            cluster_class="dask_cuda.LocalCUDACluster",
            cluster_kwargs={"threads_per_worker": 1, "dashboard_address": ":0", "env": dict(WORKER_ENV)},
        )
    return ClusterPlan(
        kind="local",
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": settings.dask_workers,
            "threads_per_worker": 1,
            "processes": True,
            # ":0" picks a free port; None would still bind 8787 and clash between concurrent runs.
            "dashboard_address": ":0",
            "env": dict(WORKER_ENV),
        },
    )


def worker_processes(settings: Settings) -> int | None:
    """How many worker processes a flow's batches run in: the LocalCluster size, 1 for the thread runner,
    ``None`` when unknown (an external scheduler)."""
    if settings.task_runner == "threads":
        return 1
    plan = plan_cluster(settings)
    if plan.kind == "local":
        return int(plan.cluster_kwargs["n_workers"])
    return None if plan.kind == "external" else visible_gpus() or None
