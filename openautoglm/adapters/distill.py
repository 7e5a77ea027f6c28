"""Distillation steps that touch models and MLflow, shared by ``TaskPipeline.distill`` and the ``distill`` flow.

1. :func:`teach`: the teacher labels rows in a seeded order within the call budget, through the call cache.
2. :func:`learn_student`: the student learns the teacher's answers, held-out rows measure it — labels through
   :func:`~openautoglm.core.nlp.distill.fit_student`, entities through
   :func:`~openautoglm.core.nlp.distill.fit_ner_student` with the CRF (pure steps in core; the CRF's features need
   LAC and the call cache, so it is passed in here).
3. :func:`register`: the student goes to the active MLflow run, the Model Registry and (optionally) a folder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from openautoglm.adapters.cache import CacheMode, CallCache
from openautoglm.adapters.models import ModelSpec, load_backend
from openautoglm.adapters.models.base import BatchStats, GenerativeBackend
from openautoglm.adapters.models.run import default_cache, predict_rows
from openautoglm.adapters.models.student import ARTIFACT, RegisteredStudent, log_student, save_student
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.distill import (
    DistillOptions,
    StudentFit,
    TeacherLabels,
    fit_ner_student,
    fit_student,
    label_with_budget,
    seeded_order,
)
from openautoglm.core.nlp.types import Entity, Row, RowResult, TaskConfig, TaskType

Teacher = Callable[[list[Row]], tuple[list[RowResult], BatchStats]]


class DistillResult(BaseModel):
    """What a distillation produced."""

    name: str
    version: int
    model: str = Field(description="The model string that loads the student: mlflow:/<name>/<version>.")
    model_uri: str
    folder: Path | None = Field(default=None, description="The student as a folder (model='local:<folder>').")
    metrics: dict[str, float | int]
    labels: list[str]
    mlflow_run_id: str
    mlflow_run_url: str


def teacher_call_cost(spec: ModelSpec, api_key: SecretStr | None = None) -> int:
    """The most calls one row can cost the teacher: 2 for a chat model (an answer and one repair round), else 1."""
    return 2 if isinstance(load_backend(spec, api_key), GenerativeBackend) else 1


def teach(
    rows: Sequence[Row],
    teacher: Teacher,
    *,
    budget: int | None,
    seed: int,
    batch_size: int,
    calls_per_row: int,
) -> TeacherLabels[BatchStats]:
    """The teacher's answers for rows drawn in a seeded order, within ``budget`` calls (default: one per row).

    A chat teacher (``calls_per_row`` 2) is metered: its backend charges every request, cached or not, so a rerun
    labels the same rows, and the calls sent never pass the budget.
    """
    ordered = [rows[i] for i in seeded_order(len(rows), seed)]
    return label_with_budget(
        ordered,
        teacher,
        budget=budget or max(1, len(rows) * calls_per_row),
        batch_size=batch_size,
        calls_per_row=calls_per_row,
        meter=calls_per_row > 1,
    )


def model_teacher(spec: ModelSpec, config: TaskConfig, *, api_key: SecretStr | None, cache: CallCache) -> Teacher:
    """A teacher that is a model backend (the flow's; the SDK passes its own, which may be a fitted head)."""
    return lambda batch: predict_rows(spec, config, batch, api_key=api_key, cache=cache)


def teacher_counts(labels: TeacherLabels[BatchStats]) -> dict[str, int]:
    """Metrics of the teaching step."""
    stats = BatchStats()
    for item in labels.stats:
        stats = stats.merge(item)
    ok = sum(r.status == "ok" and r.prediction is not None for r in labels.results)
    return {
        "teacher_rows_sent": labels.rows_sent,
        "teacher_rows_labelled": ok,
        "teacher_calls": labels.calls,
        "teacher_fresh_calls": labels.fresh_calls if labels.fresh_calls is not None else stats.calls,
        "teacher_cache_hits": stats.cache_hits,
        "teacher_tokens": stats.tokens,
    }


Learner = Callable[
    [Mapping[int, str], Sequence[RowResult], Mapping[int, Any] | None, DistillOptions, TaskConfig, CallCache],
    StudentFit,
]


def _learn_labels(
    texts: Mapping[int, str],
    results: Sequence[RowResult],
    gold: Mapping[int, Any] | None,
    options: DistillOptions,
    config: TaskConfig,
    cache: CallCache,
) -> StudentFit:
    return fit_student(texts, results, gold, options, config.labels or ())


def _learn_entities(
    texts: Mapping[int, str],
    results: Sequence[RowResult],
    gold: Mapping[int, Any] | None,
    options: DistillOptions,
    config: TaskConfig,
    cache: CallCache,
) -> StudentFit:
    from openautoglm.adapters.models.crf import CrfNer

    def predict(crf: CrfNer, texts: list[str]) -> list[tuple[Entity, ...]]:
        results, _ = crf.predict_rows([Row(i, t) for i, t in enumerate(texts)], cache)
        return [r.prediction if isinstance(r.prediction, tuple) else () for r in results]

    return fit_ner_student(texts, results, gold, options, learn=lambda s: CrfNer().fit(s, cache), predict=predict)


#: How a student learns each task's answers.
LEARNERS: dict[TaskType, Learner] = {"text_classification": _learn_labels, "ner": _learn_entities}


def learn_student(
    texts: Mapping[int, str],
    results: Sequence[RowResult],
    gold: Mapping[int, Any] | None,
    options: DistillOptions,
    config: TaskConfig,
    cache_mode: CacheMode = "use",
) -> StudentFit:
    """Train ``options.student`` on the teacher's answers for ``config``'s task; measure it on held-out rows.

    Args:
        texts: Text by row id.
        results: The teacher's answers (row ids index ``texts``).
        gold: Gold answers by row id, where known (labels; NER: entity lists or their JSON).
        options: Student kind, hold-out share, seed.
        config: The task (its labels or entity types).
        cache_mode: The call cache for the student's own features (the CRF's LAC tags).
    """
    learner = LEARNERS.get(config.task_type)
    if learner is None:
        raise ConfigurationError(f"No student learns {config.task_type}.", hint="distil text_classification or ner")
    return learner(texts, results, gold, options, config, default_cache(cache_mode))


def register(
    fit: StudentFit,
    options: DistillOptions,
    *,
    teacher: str,
    metrics: Mapping[str, float | int],
    folder: Path | None = None,
) -> tuple[RegisteredStudent, Path | None]:
    """Log the student to the active MLflow run, register a new version, and write it to ``folder/student``."""
    metadata = {"teacher": teacher, "labels": ",".join(fit.labels), "seed": options.seed}
    registered = log_student(
        fit.student,
        name=options.name,
        kind=fit.kind,
        examples=fit.examples,
        metrics=metrics,
        metadata=metadata,
        alias=options.alias,
    )
    saved = None
    if folder is not None:
        saved = save_student(fit.student, folder / ARTIFACT, kind=fit.kind, examples=fit.examples, metadata=metadata)
    return registered, saved


__all__ = [
    "DistillOptions",
    "DistillResult",
    "StudentFit",
    "fit_student",
    "learn_student",
    "register",
    "teach",
    "teacher_counts",
]
