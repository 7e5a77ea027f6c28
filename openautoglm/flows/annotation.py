"""Flows ``annotation_round`` and ``train_round``: the annotation use cases with their steps as Prefect tasks.

- ``annotation_round``: current model -> the pool -> pre-label (predictions stored) -> choose rows -> queue them.
- ``train_round``: is it due? -> training data (labels, unlabelled pool, the evaluation slice's gold) -> fit the
  student -> register it, score it, move its aliases. Its deployment (``deployments/prefect.yaml``,
  ``train-round-on-labels``) starts it by itself on each ``openautoglm.annotation.due`` event of a project
  (:func:`openautoglm.usecases.annotation.record_labels` emits one when a training becomes due).

The parameters are the use cases' own models (:class:`AnnotationRoundParams`, :class:`TrainRoundParams`), so the
Prefect form, the CLI and the REST API read one declaration.
"""

from __future__ import annotations

from prefect import flow

from openautoglm.tasks.annotation import ROUND_TASKS, TRAIN_TASKS
from openautoglm.usecases.annotation import (
    AnnotationRoundParams,
    RoundSummary,
    TrainRoundParams,
    TrainSummary,
)
from openautoglm.usecases.annotation import annotation_round as run_annotation_round
from openautoglm.usecases.annotation import train_round as run_train_round


@flow(name="annotation_round")
def annotation_round(params: AnnotationRoundParams) -> RoundSummary:
    """Pre-label a project's pool with its current model and queue the rows worth labelling next."""
    return run_annotation_round(params, ROUND_TASKS)


@flow(name="train_round")
def train_round(params: TrainRoundParams) -> TrainSummary:
    """Train on a project's labels when due, register the student, move ``candidate`` (and ``production`` when
    better)."""
    return run_train_round(params, TRAIN_TASKS)
