"""Running a backend over rows: capability checks, the key, and the process-wide call cache."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from pydantic import SecretStr

from openautoglm.adapters.cache import CacheMode, CallCache
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
    if config.task_type not in entry.tasks:
        capable = [name for name, e in BACKENDS.items() if config.task_type in e.tasks and name.startswith("local")]
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
