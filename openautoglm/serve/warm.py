"""A warm executor for canvas runs: one long-lived process, started with the API, that runs each workflow run in
itself instead of waiting for a worker to poll and start a new flow process (issue 33: ~27 s -> seconds).

A run is still what the worker would run: the flow run the API created from the pipeline deployment (tagged, its
parameters confined), executed by Prefect's own engine (``prefect.flow_engine.run_flow``) on the ``pipeline`` flow,
so the Prefect UI shows one flow run with one task run per node, and the workflow-run route reads it as before.
What is saved: the worker's poll (``PREFECT_WORKER_QUERY_SECONDS``, 10 s by default), the new process and its
imports (Prefect, pandas, Great Expectations, the stages: about 10 s here), and the models (each backend is loaded
once per process and kept, :func:`~openautoglm.adapters.models.load_backend`).

The executor claims a run by proposing ``Pending`` as a worker does; a run a worker took first (a worker of the
deployment's pool may run too) is left to it, and a run created while the executor is down stays ``Scheduled``
for a worker. Flow runs here send no heartbeats (each would add about a second): a run whose executor dies stays
``Running`` until it is cancelled, as a run started from the CLI.

Choose it with ``OPENAUTOGLM_SERVE_WORKFLOW_EXECUTOR=warm`` (default ``worker``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue as queues
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

log = logging.getLogger(__name__)

#: Runs the executor process runs at once (threads of its one process; each run's nodes run on the flow's threads).
RUNS_AT_ONCE = 2
#: Models loaded when the executor starts, so that the first run finds them warm (the starters' offline models).
WARM_MODELS = ("local-auto",)


class WarmExecutor:
    """The long-lived process and the queue of flow run ids it runs."""

    def __init__(self, models: Sequence[str] = WARM_MODELS) -> None:
        self.models = tuple(models)
        self._context = multiprocessing.get_context("spawn")  # a fresh interpreter: no copy of the API's threads
        self._queue: Any = None
        self._process: Any = None

    def start(self) -> None:
        """Start the process (it imports and loads what runs need, then waits for run ids)."""
        from prefect.settings import PREFECT_API_URL

        # The server this API talks to, also when it was set in-process (a test harness) rather than in the
        # environment the process inherits.
        env = {"PREFECT_API_URL": str(PREFECT_API_URL.value())} if PREFECT_API_URL.value() else {}
        self._queue = self._context.Queue()
        self._process = self._context.Process(
            target=serve_runs, args=(self._queue, self.models, env), name="openautoglm-warm-executor", daemon=True
        )
        self._process.start()
        log.info("warm executor for workflow runs started (pid %s)", self._process.pid)

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def submit(self, run_id: str) -> bool:
        """Hand a flow run to the process; False when it is not running (the run waits for a worker)."""
        if not self.alive:
            log.warning("warm executor is not running: flow run %s waits for a worker", run_id)
            return False
        self._queue.put(str(run_id))
        return True

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the process to finish the runs it has and stop; end it after ``timeout_s``."""
        if self._process is None:
            return
        with contextlib.suppress(OSError, ValueError):  # a queue already closed
            self._queue.put(None)
        self._process.join(timeout_s)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(2)
        self._process = None


def serve_runs(runs: Any, models: Sequence[str], env: Mapping[str, str]) -> None:
    """The executor process: warm up, then run each flow run id from ``runs`` until a None arrives."""
    os.environ.update(env)  # before Prefect is imported
    logging.basicConfig(level=logging.INFO)
    warm_up(models)
    with ThreadPoolExecutor(max_workers=RUNS_AT_ONCE, thread_name_prefix="workflow-run") as pool:
        while True:
            try:
                run_id = runs.get()
            except (EOFError, OSError, queues.Empty):  # the API went away
                return
            if run_id is None:
                return
            pool.submit(run_one, run_id)


def warm_up(models: Sequence[str]) -> None:
    """Import what a run imports and load ``models``, so the first run pays neither."""
    from openautoglm.adapters.models import ModelSpec, load_backend
    from openautoglm.flows.pipeline import pipeline  # noqa: F401  (Prefect, the stages, pandas)
    from openautoglm.stages import catalogue

    catalogue()
    for model in models:
        try:
            load_backend(ModelSpec(model=model))
        except Exception:  # a model that cannot load here fails its node in a run, with its own error
            log.warning("warm executor: model %s did not load", model, exc_info=True)


def run_one(run_id: str) -> None:
    """Claim the flow run (``Pending``, as a worker does) and run it here with Prefect's engine."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import OrchestrationResult, SetStateStatus
    from prefect.flow_engine import load_flow_run, run_flow
    from prefect.states import Pending

    from openautoglm.flows.pipeline import pipeline
    from openautoglm.flows.runtime import without_flow_heartbeats

    try:
        uid = UUID(run_id)
        with get_client(sync_client=True) as client:
            claimed: OrchestrationResult[Any] = client.set_flow_run_state(
                uid, Pending(message="taken by the API's warm executor")
            )
        if claimed.status != SetStateStatus.ACCEPT:
            log.info("flow run %s was taken by another runner (%s)", run_id, claimed.status.value)
            return
        with without_flow_heartbeats():
            run_flow(pipeline, flow_run=load_flow_run(uid), return_type="state")
    except Exception:  # the run's own failure is in its state; this is the executor's
        log.exception("warm executor: flow run %s could not run", run_id)
