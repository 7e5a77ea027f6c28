"""Into production without a restart: a registry alias that moves is noticed, and its new version swapped in.

For every served model string with an alias (``mlflow:/name@alias``), :class:`AliasWatcher` asks the Model Registry
every ``OPENAUTOGLM_SERVE_ALIAS_POLL_S`` seconds which version the alias names
(``MlflowClient.get_model_version_by_alias``: one small query per model). When that is another version than the one
served, the watcher's own thread — never a request — loads it pinned (``mlflow:/name/<version>``, so the alias
moving again meanwhile changes nothing), answers a probe row with it under the configurations the task served last,
and swaps it in (:meth:`~openautoglm.serve.service.ModelService.swap`): calls in flight finish on the old version,
the next ones use the new one, none fails. Each answer names its version (``model_version``); ``/readyz`` lists
what every task serves.

A version that cannot be loaded or warmed is logged and counted (``openautoglm_model_swaps_total{result="failed"}``),
the old version keeps serving, and the next poll tries again (a version registered with a fault never answers).

Why a poll: it works against every registry store (SQLite, PostgreSQL, a tracking server) and needs nothing from
whoever moves the alias (a ``train_round`` flow, an admin in the MLflow UI). The time from the move to the new
version answering is at most one poll plus the load (:mod:`bench.hotswap` measures it). Each API process (each
``--workers`` process, each pod) watches for itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from openautoglm.core.model_names import model_scheme
from openautoglm.core.nlp.distill import RegistryRef, parse_registry_ref

if TYPE_CHECKING:
    from openautoglm.adapters.models import ModelSpec
    from openautoglm.serve.service import ModelService, Task

log = logging.getLogger(__name__)

#: What one check did for a task.
Outcome = Literal["unchanged", "swapped", "failed", "lookup_failed"]


def watched(specs: Mapping[Task, ModelSpec]) -> dict[Task, RegistryRef]:
    """The tasks served by a registered model named through an alias, with that reference."""
    found: dict[Task, RegistryRef] = {}
    for task, spec in specs.items():
        if model_scheme(spec.model) == "mlflow":
            ref = parse_registry_ref(spec.model)
            if ref.alias is not None:
                found[task] = ref
    return found


def _registry_client() -> Any:
    from openautoglm.adapters.tracking import registry_client

    return registry_client()


class AliasWatcher:
    """Polls the registry for the aliases ``service`` serves and swaps in the versions they move to.

    Args:
        service: The API's model service (its :meth:`~ModelService.swap` does the load and the swap).
        poll_s: Seconds between two checks.
        client_factory: Builds the ``MlflowClient`` (default: the project's registry client for
            ``OPENAUTOGLM_MLFLOW_TRACKING_URI``); built once, again after a failed lookup.
    """

    def __init__(
        self, service: ModelService, poll_s: float, client_factory: Callable[[], Any] = _registry_client
    ) -> None:
        if not poll_s > 0:
            raise ValueError(f"poll_s must be > 0, got {poll_s}")
        self.service = service
        self.poll_s = poll_s
        self.targets = watched(service.specs)
        self._client_factory = client_factory
        self._client: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._check_lock = threading.Lock()

    def start(self) -> None:
        """Check every ``poll_s`` seconds on a daemon thread, until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="alias-watcher", daemon=True)
        self._thread.start()
        log.info(
            "watching %s every %g s",
            ", ".join(f"{task}: {ref.model}" for task, ref in self.targets.items()),
            self.poll_s,
        )

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop polling; a load under way is waited for up to ``timeout_s`` (the thread is a daemon)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.check()
            except Exception:  # the watcher must outlive any one failure; the next poll tries again
                log.exception("checking the model aliases failed")

    def check(self) -> dict[Task, Outcome]:
        """One check of every watched alias (blocking: a swap loads the new version here). Safe to call from any
        thread; concurrent calls run one after the other."""
        with self._check_lock:
            return {task: self._check(task, ref) for task, ref in self.targets.items()}

    def _check(self, task: Task, ref: RegistryRef) -> Outcome:
        from openautoglm.adapters.models.student import resolve_version

        metrics = self.service.metrics
        served = self.service.loaded(task)
        try:
            if self._client is None:
                self._client = self._client_factory()
            version = str(resolve_version(ref, self._client).version)
        except Exception as error:
            self._client = None  # built again at the next poll (a tracking server restarted, a new store)
            metrics.model_swaps.labels(task=task, result="lookup_failed").inc()
            log.warning("%s: the registry did not say which version %s names: %s", task, ref.model, error)
            return "lookup_failed"
        if served is not None and served.version == version:
            return "unchanged"
        old = served.version if served is not None else None
        pinned = f"mlflow:/{ref.name}/{version}"
        started = time.perf_counter()
        try:
            self.service.swap(task, pinned)
        except Exception as error:
            metrics.model_swaps.labels(task=task, result="failed").inc()
            log.error(
                "%s: %s moved to version %s, which failed to load or answer (%s: %s); version %s keeps serving, "
                "retried in %g s",
                task,
                ref.model,
                version,
                type(error).__name__,
                error,
                old,
                self.poll_s,
            )
            return "failed"
        seconds = time.perf_counter() - started
        metrics.model_swaps.labels(task=task, result="swapped").inc()
        metrics.model_swap_seconds.labels(task=task).observe(seconds)
        log.warning("%s: %s moved from version %s to %s, swapped in (%.1f s)", task, ref.model, old, version, seconds)
        return "swapped"


__all__ = ["AliasWatcher", "Outcome", "watched"]
