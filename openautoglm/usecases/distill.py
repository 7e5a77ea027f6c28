"""Distil a teacher into a small student, written once: :func:`distil`.

The teacher labels the rows in a seeded order within a call budget, the student learns its answers on all but a
held-out share (measured against the teacher, and against gold labels where a column has them), and the Model
Registry keeps it as a new version. ``TaskPipeline.distill`` (the SDK) and the ``distill`` flow differ only in how
each step runs: in this process, or as Prefect task runs (the teaching cached by its inputs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from openautoglm.adapters.cache import CacheMode
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.distill import DistillOptions, TeacherLabels
from openautoglm.core.nlp.types import Row, TaskConfig

#: Label ``rows`` with the teacher within the options' budget.
Teach = Callable[[tuple[Row, ...]], TeacherLabels[Any]]


def distill_options(task_type: str, **options: Any) -> DistillOptions:
    """:class:`DistillOptions` from keyword arguments, the student defaulting to the task's (``crf-ner`` for NER,
    else ``tfidf-linear``); a :class:`ConfigurationError` when that student cannot learn the task."""
    from openautoglm.core.nlp.distill import STUDENTS, default_student

    settings = {**options, "student": options.get("student") or default_student(task_type)}
    chosen = DistillOptions(**settings)
    if task_type not in STUDENTS.resolve(chosen.student).tasks:
        raise ConfigurationError(f"A {chosen.student} student cannot learn {task_type}.")
    return chosen


@dataclass(frozen=True)
class Distilled:
    """A registered student: its registry entry, saved folder, labels and metrics."""

    registered: Any
    folder: Path | None
    labels: list[str]
    metrics: dict[str, Any]


def distil(
    frame: pd.DataFrame,
    *,
    task: TaskConfig,
    options: DistillOptions,
    teach: Teach,
    teacher: str,
    text_column: str = "text",
    label_column: str | None = None,
    cache_mode: CacheMode = "use",
    folder: Path | None = None,
    learn: Callable[..., Any] | None = None,
    keep: Callable[..., Any] | None = None,
) -> Distilled:
    """Label ``frame``'s rows with ``teach``, fit the student, log the metrics to the open MLflow run and register
    it as ``options.name`` (the run's model is ``teacher``).

    Args:
        frame: The rows, with a ``row_id`` column, ``text_column`` and (optionally) ``label_column`` (gold answers,
            never shown to the teacher or the student).
        learn: Fits the student (default: in this process); the flow passes its task.
        keep: Registers it (default: in this process); the flow passes its task.
        folder: Also save the student under ``folder/student``.
    """
    from openautoglm.adapters.distill import learn_student, register, teacher_counts
    from openautoglm.adapters.tracking import log_metrics
    from openautoglm.core.data.schema import ROW_ID
    from openautoglm.core.nlp.batching import frame_rows
    from openautoglm.core.nlp.distill import gold_answers

    for column in (text_column, *([label_column] if label_column else [])):
        if column not in frame.columns:
            raise ConfigurationError(
                f"No column '{column}' in the unlabelled rows.",
                hint=f"columns are {[c for c in frame.columns if c != ROW_ID]}",
            )
    rows = frame_rows(frame, text_column, None)
    taught = teach(tuple(rows))
    gold = gold_answers(frame[ROW_ID], frame[label_column], task.task_type) if label_column else None
    texts = {r.row_id: r.text for r in rows}
    fit = (learn or learn_student)(texts, taught.results, gold, options, task, cache_mode)
    metrics = {**teacher_counts(taught), **fit.metrics, "unlabelled_rows": len(rows)}
    log_metrics(metrics)
    registered, saved = (keep or register)(fit, options, teacher=teacher, metrics=metrics, folder=folder)
    return Distilled(registered, saved, list(fit.labels), metrics)
