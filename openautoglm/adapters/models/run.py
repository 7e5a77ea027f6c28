"""Running a backend over rows: capability checks, the key, and the process-wide call cache."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from pydantic import SecretStr

from openautoglm.adapters.cache import CacheMode, CallCache
from openautoglm.adapters.compute import worker_processes
from openautoglm.adapters.models import BACKENDS, ModelSpec, load_backend
from openautoglm.adapters.models.base import BatchStats
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig
from openautoglm.settings import get_settings


@functools.lru_cache(maxsize=8)
def open_cache(path: Path, mode: CacheMode) -> CallCache:
    """One cache object per file and mode per process."""
    return CallCache(path, mode)


def default_cache(mode: CacheMode = "use") -> CallCache:
    """The machine-wide cache under the home folder (``$OPENAUTOGLM_HOME/cache/calls.sqlite``)."""
    return open_cache(get_settings().home.expanduser().resolve() / "cache" / "calls.sqlite", mode)


def check_supported(spec: ModelSpec, config: TaskConfig) -> None:
    """Raise :class:`ConfigurationError` when the model cannot do the task, naming models that can."""
    entry = BACKENDS.resolve(spec.backend)
    if not entry.supports(config.task_type):
        capable = [name for name, e in BACKENDS.items() if e.supports(config.task_type) and name.startswith("local")]
        raise ConfigurationError(
            f"Model '{spec.model}' cannot do {config.task_type}.",
            hint=f"use a GLM model (glm-4, glm-4-flash) or {', '.join(n.replace('_', '-') for n in capable)}",
        )


def predict_rows(
    spec: ModelSpec,
    config: TaskConfig,
    rows: Sequence[Row],
    *,
    api_key: SecretStr | None = None,
    cache: CallCache | None = None,
) -> tuple[list[RowResult], BatchStats]:
    """Results for ``rows`` (in order) and the batch's counts."""
    check_supported(spec, config)
    backend = load_backend(spec, api_key)
    return backend.predict(config, list(rows), cache if cache is not None else default_cache())


def model_identity(spec: ModelSpec) -> str:
    """What decides a model's answers beyond its model string, for result caches keyed by task inputs.

    A registered model (``mlflow:/name@alias`` or ``/version``): the tracking store and the version it names now
    (an alias moves; another store may hold another model under the same name). A ``local:`` folder: the names,
    sizes and times of its files (a model saved again in place). Anything else: ``""`` (the package version and
    the model string already say it).
    """
    import hashlib
    import os

    from openautoglm.core.registry import normalize_name

    backend = normalize_name(spec.backend)
    if backend == "mlflow":
        from openautoglm.adapters.models.student import resolve_version
        from openautoglm.adapters.tracking import registry_client
        from openautoglm.core.nlp.distill import parse_registry_ref

        client = registry_client()
        version = resolve_version(parse_registry_ref(spec.model), client)
        return f"{client.tracking_uri}|{version.name}/{version.version}|{version.run_id}"
    if backend == "local_hf":
        folder = Path(spec.model.split(":", 1)[1]).expanduser()
        if not folder.is_dir():
            return ""
        parts = []
        for root, _, files in sorted(os.walk(folder)):
            for name in sorted(files):
                stat = (Path(root) / name).stat()
                parts.append(f"{Path(root, name).relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}")
        return hashlib.sha256("|".join([str(folder.resolve()), *parts]).encode()).hexdigest()[:16]
    return ""


def per_worker(spec: ModelSpec) -> ModelSpec:
    """An API model's concurrency limit split between the flow's worker processes (each has its own limiter)."""
    if not spec.remote:
        return spec
    workers = worker_processes(get_settings())
    if not workers or workers == 1:
        return spec
    return spec.model_copy(update={"max_concurrency": max(1, spec.max_concurrency // workers)})
