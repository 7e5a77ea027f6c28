"""The models behind the API: loaded once per process, called through one micro-batcher per task.

A request becomes rows with a task configuration; rows of concurrent requests with the same configuration go to
the model in one call (:class:`~openautoglm.serve.batcher.MicroBatcher`). GLM models are called through the
circuit breaker; every call updates the batch-size, cache and upstream-error metrics.

**What a request may cost.** At start-up every local model is timed on a short review (its seconds per character;
:meth:`~openautoglm.adapters.models.base.ModelBackend.calibrate`). Each request is then estimated before it is
queued (:meth:`ModelService.estimate`: the characters the model will read, after the encoders' cut, times that
figure) and refused with 422 above ``max_request_cost_s``. The batcher serves subjects fairly by that estimate and
gives one subject at most all but one of the ``model_lanes`` copies of a built-in local model, so one subject's
long call never holds everyone else's requests; a request still waiting at its deadline is never started.

**Versions without a restart.** A local model is served from a :class:`LoadedModel`: one loaded version and the
copies its lanes take turns on. A call takes the task's current one when it starts and keeps it to its end, so
:meth:`ModelService.swap` (called off the request path by :class:`~openautoglm.serve.swap.AliasWatcher` when a
registry alias moves) replaces it with one assignment: calls in flight finish on the old version, the next calls
use the new one, and no request waits for the load. Each answer says which registered version gave it
(``model_version``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import pybreaker
from pydantic import SecretStr

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models import BACKENDS, ModelBackend, ModelSpec, load_backend
from openautoglm.adapters.models.run import check_supported, default_cache, predict_rows
from openautoglm.core.errors import ConfigurationError, NotRegisteredYet
from openautoglm.core.model_names import model_scheme
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig, TaskType
from openautoglm.serve.batcher import DeadlineExceeded, MicroBatcher
from openautoglm.serve.breaker import UpstreamFailure, make_breaker, open_for
from openautoglm.serve.envelope import ApiError, Code
from openautoglm.serve.metrics import Metrics
from openautoglm.serve.settings import ServeSettings

if TYPE_CHECKING:
    from openautoglm.serve.swap import AliasWatcher

log = logging.getLogger(__name__)

Task = Literal["classify", "ner", "match"]
TASK_TYPES: dict[Task, TaskType] = {"classify": "text_classification", "ner": "ner", "match": "semantic_matching"}
Item = tuple[str, str | None]  # (text, text_pair)
#: Configurations a task served last, kept to warm a new version with what the traffic asks (distinct, newest last).
RECENT_CONFIGS = 4
#: The row a new version answers before it is swapped in.
WARM_UP_TEXT = "这家店的外卖送得很快，味道不错。"


@dataclass(frozen=True)
class LoadedModel:
    """One loaded version of a task's local model and the copies its lanes take turns on.

    Attributes:
        model: The model string as configured (``mlflow:/name@alias`` stays the alias).
        version: The registered version loaded (``"3"``), for ``mlflow:`` models; else ``None``.
        backend: The first copy (costs and metadata are read from it).
        copies: Every copy, one per lane; a call takes one and puts it back.
        in_place: A ``local:`` folder: each call asks :func:`load_backend`, which loads the folder again when it
            was saved again (the copies are not used).
        loaded_at: When it was loaded (Unix seconds).
    """

    model: str
    version: str | None
    backend: ModelBackend
    copies: queue.SimpleQueue[ModelBackend]
    in_place: bool = False
    loaded_at: float = dataclasses.field(default_factory=time.time)


class ModelService:
    """Backends, batchers and the breaker of one API process."""

    def __init__(self, settings: ServeSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.specs: dict[Task, ModelSpec] = {
            "classify": self._spec(settings.classify_model),
            "ner": self._spec(settings.ner_model),
            "match": self._spec(settings.match_model),
        }
        for task, spec in self.specs.items():
            check_supported(spec, _probe_config(TASK_TYPES[task]))
        self.breaker = make_breaker(
            "glm",
            fail_max=settings.breaker_fail_max,
            reset_s=settings.breaker_reset_s,
            storage=settings.breaker_storage,
            metrics=metrics,
            namespace=settings.rate_limit_namespace,
        )
        rows = settings.batch_max_rows if settings.micro_batching else 1
        wait = settings.batch_max_wait_ms / 1000 if settings.micro_batching else 0.0
        # Lanes: an API upstream serves calls in parallel; a local model serialises on its own lock, so a built-in
        # one gets a copy per lane (a folder or registered model, which may be reloaded in place, gets one lane).
        self.lanes: dict[Task, int] = {
            task: settings.glm_max_concurrency
            if spec.remote
            else (settings.model_lanes if model_scheme(spec.model) is None else 1)
            for task, spec in self.specs.items()
        }
        #: Per local task, the version served now (replaced whole by :meth:`swap`, never changed in place).
        self._loaded: dict[Task, LoadedModel] = {}
        self._recent: dict[Task, deque[TaskConfig]] = {task: deque(maxlen=RECENT_CONFIGS) for task in self.specs}
        self._recent_lock = threading.Lock()  # lanes write it from their threads, a swap reads it
        self._swap_lock = threading.Lock()  # one swap at a time (the watcher's thread, an admin's call)
        self.watcher: AliasWatcher | None = None
        #: Per task, the timed seconds per character (by encoder, or by model), measured at load.
        self.timings: dict[Task, dict[str, float]] = {}
        self.batchers: dict[Task, MicroBatcher[TaskConfig, Item, RowResult]] = {}
        for task in self.specs:
            self.batchers[task] = MicroBatcher(
                self._batch_function(task),
                max_rows=rows,
                max_wait_s=wait,
                concurrency=self.lanes[task],
                # Cost bounds hold in seconds once the model is timed (load); until then, and for API models, a
                # request counts one per item and batches are bounded by rows only.
                max_cost=float("inf"),
            )
        self._api_key: SecretStr | None = None
        #: Per task, why it has no model yet: its ``mlflow:/name@alias`` names no version (the alias watcher
        #: swaps one in when it appears; until then the task answers 503).
        self.waiting: dict[Task, str] = {}
        self._ready = threading.Event()
        self.load_error: str | None = None

    def _spec(self, model: str) -> ModelSpec:
        spec = ModelSpec(model=model)
        if spec.remote:
            return ModelSpec(
                model=model,
                base_url=self.settings.glm_base_url,
                timeout_s=self.settings.glm_timeout_s,
                max_retries=self.settings.glm_max_retries,
                max_concurrency=self.settings.glm_max_concurrency,
            )
        return spec

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def cache(self) -> CallCache:
        return default_cache(self.settings.cache)

    def load(self) -> None:
        """Build every configured backend (blocking; at start-up, on a thread). Idempotent."""
        try:
            if any(spec.remote for spec in self.specs.values()):
                self._api_key = self._zhipu_key()
            for task, spec in self.specs.items():
                if spec.remote:
                    load_backend(spec, self._api_key)
                    continue
                try:
                    backend = load_backend(spec)
                except NotRegisteredYet as error:  # the alias watcher loads it when a version is registered
                    if self.settings.alias_poll_s <= 0:  # no watcher: it would wait for ever
                        raise
                    self.waiting[task] = error.args[0].split("\n", 1)[0]
                    log.warning("%s: waiting for %s: %s", task, spec.model, self.waiting[task])
                    continue
                self._install(task, self._build(task, backend, spec))
            self.cache  # noqa: B018  (opens the cache file now, not on the first request)
        except Exception as error:
            self.load_error = f"{type(error).__name__}: {error}"
            log.error("loading the models failed: %s", self.load_error)
            raise
        self._ready.set()
        self.metrics.ready.set(1)
        self._start_watcher()

    def _start_watcher(self) -> None:
        from openautoglm.serve.swap import AliasWatcher, watched

        if self.settings.alias_poll_s > 0 and watched(self.specs) and self.watcher is None:
            self.watcher = AliasWatcher(self, self.settings.alias_poll_s)
            self.watcher.start()

    # --- versions ------------------------------------------------------------------------------------------
    def loaded(self, task: Task) -> LoadedModel | None:
        """The version ``task`` is served by now (``None``: an API model, or not loaded yet)."""
        return self._loaded.get(task)

    def versions(self) -> dict[str, str | None]:
        """Per task, the registered version served now (``None`` where the model is not a registered one)."""
        return {task: (loaded.version if (loaded := self._loaded.get(task)) else None) for task in self.specs}

    def swap(self, task: Task, model: str) -> LoadedModel:
        """Load ``model`` (e.g. ``mlflow:/name/4``, the version an alias now names) for ``task``, warm it with the
        configurations the task served last, and make it the one new calls use. Blocking: call it off the request
        path. Calls in flight finish on the version they started with.

        Raises:
            Exception: Whatever loading or warming raised; the version served before stays.
        """
        new = ModelSpec(model=model)
        check_supported(new, _probe_config(TASK_TYPES[task]))
        if new.remote:
            raise ConfigurationError(f"{model} is an API model: only local models are swapped in.")
        with self._swap_lock:
            backend = BACKENDS.resolve(new.backend).factory(new, None)
            self._warm(task, backend)
            loaded = self._build(task, backend, new)
            self._install(task, loaded)
            self.waiting.pop(task, None)
        return loaded

    def _served_configs(self, task: Task) -> tuple[list[TaskConfig], bool]:
        """The configurations ``task`` served last (newest first) and ``True``; when it has served none yet, the
        configuration of a request that gives no options (the default labels) and ``False``."""
        with self._recent_lock:
            recent = list(reversed(self._recent[task]))
        if recent:
            return recent, True
        labels = tuple(self.settings.default_labels) if task == "classify" else None
        return [TaskConfig(task_type=TASK_TYPES[task], labels=labels)], False

    def _warm(self, task: Task, backend: ModelBackend) -> None:
        """A probe row through ``backend`` under each configuration ``task`` served last: a version that cannot
        answer today's traffic is not swapped in. Before any traffic, under the default configuration, where a
        configuration error (a student that never learned a default label) is let pass, as at start-up."""
        configs, from_traffic = self._served_configs(task)
        for config in configs:
            pair = "x" if config.kind.needs_pair else None
            try:
                results, _ = backend.predict(config, [Row(row_id=0, text=WARM_UP_TEXT, text_pair=pair)], self.cache)
            except ConfigurationError as error:
                if from_traffic:
                    raise
                log.warning("warming %s for %s under the default configuration: %s", backend.model, task, error)
                continue
            failed = [r for r in results if r.status == "error"]
            if len(results) != 1 or failed:
                reason = failed[0].reason if failed else f"{len(results)} results for 1 row"
                raise RuntimeError(f"the warm-up row failed: {reason}")

    def _install(self, task: Task, loaded: LoadedModel) -> None:
        self._loaded[task] = loaded  # one assignment: a call sees the old version or the new one, never a mix
        if loaded.version is not None and loaded.version.isdigit():
            self.metrics.model_version.labels(task=task).set(int(loaded.version))

    def _build(self, task: Task, backend: ModelBackend, source: ModelSpec) -> LoadedModel:
        """Time ``backend`` for ``task`` (its seconds per character), build a copy per extra lane (from ``source``,
        the spec it was loaded from: a pinned version when swapped in), prepare them."""
        spec = self.specs[task]
        started = time.perf_counter()
        for config in (_probe_config(TASK_TYPES[task]), *self._served_configs(task)[0]):
            try:  # the probe labels first; a student answers only its own labels: then as the traffic asks
                backend.calibrate(config)
                break
            except Exception as error:  # a model that cannot be timed is still served, by rows
                failure = error
        else:
            log.warning("timing %s for %s failed, its requests are not costed: %s", spec.model, task, failure)
        timed = backend.cost(_probe_config(TASK_TYPES[task]), [Row(row_id=0, text="x")]) is not None
        self.batchers[task].queue.max_cost = self.settings.batch_max_cost_s if timed else float("inf")
        self.timings[task] = backend.timings()
        for part, seconds in self.timings[task].items():
            self.metrics.seconds_per_char.labels(task=task, model=spec.model, part=part).set(seconds)
        log.info(
            "%s for %s: %s ms per character (timed in %.1f s)",
            source.model,
            task,
            ", ".join(f"{name} {1000 * s:.3f}" for name, s in self.timings[task].items()) or "not timed",
            time.perf_counter() - started,
        )
        in_place = model_scheme(spec.model) == "local"
        lanes = [backend] + [_copy(backend, source) for _ in range(0 if in_place else self.lanes[task] - 1)]
        if task == "classify":  # e.g. the default labels' descriptions, encoded now in every copy, not on a request
            try:
                for lane in lanes:
                    lane.prepare(TaskConfig(labels=tuple(self.settings.default_labels)))
            except Exception as error:  # only a head start: the first request does it otherwise
                log.warning("preparing %s for the default labels failed: %s", source.model, error)
        copies: queue.SimpleQueue[ModelBackend] = queue.SimpleQueue()
        for lane in lanes:
            copies.put(lane)
        version = backend.metadata.get("registered_version")
        return LoadedModel(spec.model, None if version is None else str(version), backend, copies, in_place)

    def estimate(self, task: Task, config: TaskConfig, items: list[Item]) -> float | None:
        """Estimated seconds of model time for ``items`` under ``config`` (``None``: not estimated, an API model
        or one that could not be timed). Pure arithmetic on lengths: nothing is tokenised or encoded."""
        spec = self.specs[task]
        loaded = self._loaded.get(task)
        if spec.remote or not self.ready or loaded is None:
            return None
        rows = [Row(row_id=i, text=text, text_pair=pair) for i, (text, pair) in enumerate(items)]
        return (load_backend(spec) if loaded.in_place else loaded.backend).cost(config, rows)

    def _zhipu_key(self) -> SecretStr:
        from openautoglm.blocks.credentials import resolve_zhipu_key

        key = self.settings.zhipu_api_key or resolve_zhipu_key(self.settings.zhipu_block)
        if key is None:
            raise ConfigurationError(
                "A GLM model is configured but there is no Zhipu key.",
                hint="set ZHIPUAI_API_KEY (or OPENAUTOGLM_SERVE_ZHIPU_API_KEY, or OPENAUTOGLM_SERVE_ZHIPU_BLOCK)",
            )
        return key

    def start(self) -> None:
        for batcher in self.batchers.values():
            batcher.start()

    async def stop(self) -> None:
        if self.watcher is not None:
            await asyncio.to_thread(self.watcher.stop)
        for batcher in self.batchers.values():
            await batcher.stop()

    def _batch_function(self, task: Task):  # type: ignore[no-untyped-def]
        spec = self.specs[task]
        labels = {"task": task, "model": spec.model}

        def run(config: TaskConfig, items: list[Item]) -> list[RowResult]:
            rows = [Row(row_id=i, text=text, text_pair=pair) for i, (text, pair) in enumerate(items)]
            loaded = self._loaded.get(task)  # read once: this call keeps this version, whatever swaps meanwhile
            results: list[RowResult]
            if spec.remote:  # an API upstream: behind the circuit breaker
                results, stats = self.breaker.call(self._upstream, spec, config, rows)
            elif loaded is not None and not loaded.in_place:  # a lane's own copy (as many copies as lanes)
                backend = loaded.copies.get()
                try:
                    results, stats = backend.predict(config, rows, self.cache)
                finally:
                    loaded.copies.put(backend)
                if loaded.version is not None:
                    results = [_with_version(r, loaded.version) for r in results]
            else:
                results, stats = predict_rows(spec, config, rows, cache=self.cache)
            self._remember(task, config)
            self.metrics.batch_rows.labels(**labels).observe(len(rows))
            self.metrics.model_rows.labels(**labels).inc(stats.calls)
            self.metrics.cache.labels(task=task, result="hit").inc(stats.cache_hits)
            self.metrics.cache.labels(task=task, result="miss").inc(stats.calls)
            return results

        return run

    def _remember(self, task: Task, config: TaskConfig) -> None:
        with self._recent_lock:
            recent = self._recent[task]
            if not recent or recent[-1] != config:
                if config in recent:
                    recent.remove(config)
                recent.append(config)

    def _upstream(self, spec: ModelSpec, config: TaskConfig, rows: list[Row]):  # type: ignore[no-untyped-def]
        results, stats = predict_rows(spec, config, rows, api_key=self._api_key, cache=self.cache)
        for code, count in stats.errors.items():
            self.metrics.upstream_errors.labels(code=code).inc(count)
        failed = [r for r in results if r.status == "error"]
        if failed and len(failed) == len(results):
            if not stats.errors:  # skipped after a fatal error: still an upstream failure
                self.metrics.upstream_errors.labels(code=failed[0].reason.split(":", 1)[0]).inc()
            raise UpstreamFailure(failed[0].reason, dict(stats.errors))
        return results, stats

    async def predict(self, task: Task, config: TaskConfig, items: list[Item], subject: str = "") -> list[RowResult]:
        """Results for ``items`` in order, queued fairly among ``subject``'s peers; :class:`ApiError` for a request
        over the cost cap (422), an open circuit, a failed upstream, a timeout."""
        if not self.ready:
            raise ApiError(Code.NOT_READY, "models are still loading; retry shortly", headers={"Retry-After": "2"})
        if task in self.waiting:
            raise ApiError(
                Code.NOT_READY,
                f"no model for {task} yet: {self.waiting[task]} It is loaded within "
                f"{self.settings.alias_poll_s:g} s of being registered.",
                headers={"Retry-After": str(max(1, round(self.settings.alias_poll_s)))},
            )
        if self.specs[task].remote:
            left = open_for(self.breaker)
            if left is not None:
                self.metrics.upstream_errors.labels(code="circuit_open").inc()
                raise _circuit_open(left)
        cost = self.estimate(task, config, items)
        cap = self.settings.max_request_cost_s
        if cost is not None and cost > cap:
            self.metrics.refused.labels(task=task, reason="cost_cap").inc()
            raise ApiError(
                Code.INVALID,
                f"the request would take about {cost:.1f} s of model time ({self.specs[task].model}, texts cut to "
                f"what its encoders read); at most {cap:g} s a request: send fewer or shorter texts, "
                "fewer few-shot examples or shorter label descriptions",
                data={"estimated_cost_s": round(cost, 3), "max_request_cost_s": cap},
            )
        timeout = self.settings.batch_timeout_s
        try:
            return await asyncio.wait_for(
                self.batchers[task].submit(
                    config, items, subject=subject, cost=cost, deadline=time.monotonic() + timeout
                ),
                timeout=timeout,
            )
        except DeadlineExceeded:
            self.metrics.refused.labels(task=task, reason="deadline").inc()
            raise ApiError(
                Code.TIMEOUT, "the model did not answer in time (the request waited past its deadline)"
            ) from None
        except TimeoutError:
            raise ApiError(Code.TIMEOUT, "the model did not answer in time") from None
        except pybreaker.CircuitBreakerError:
            self.metrics.upstream_errors.labels(code="circuit_open").inc()
            raise _circuit_open(open_for(self.breaker) or self.breaker.reset_timeout) from None
        except UpstreamFailure as error:
            raise ApiError(Code.UPSTREAM, "the model upstream failed", data={"errors": error.codes}) from None


def _with_version(result: RowResult, version: str) -> RowResult:
    return dataclasses.replace(result, extra={**result.extra, "model_version": version})


def _circuit_open(left: float) -> ApiError:
    retry = max(1, round(left))
    return ApiError(
        Code.CIRCUIT_OPEN,
        "the model upstream is failing; the circuit is open",
        data={"retry_after_s": retry},
        headers={"Retry-After": str(retry)},
    )


def _copy(backend: ModelBackend, spec: ModelSpec) -> ModelBackend:
    """Another instance of ``spec``'s model for a lane of its own, with ``backend``'s timing (encoders share theirs
    by name)."""
    copy = backend.lane_copy() or BACKENDS.resolve(spec.backend).factory(spec, None)
    copy.seconds_per_char = backend.seconds_per_char
    return copy


def _probe_config(task_type: TaskType) -> TaskConfig:
    return TaskConfig(task_type=task_type, labels=("a", "b") if task_type == "text_classification" else None)
