"""The few-label learner as a choice of the prompt-optimisation flow: fit :class:`~openautoglm.core.nlp.learn.
FewLabelClassifier` heads on the train split (the train rows it does not take as labelled give the TF-IDF
vocabulary), save them as a model folder, and score that folder on the dev and test splits exactly as a prompt
candidate is scored (the same rows, metric and code path), so the flow can keep whichever of the two wins on dev.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from openautoglm.adapters.cache import CacheMode
from openautoglm.adapters.candidates import score_candidate
from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.models.learned import LearnedClassifier, fit_classifier
from openautoglm.adapters.models.run import default_cache
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.types import Example, TaskConfig
from openautoglm.core.prompt.budget import Budget, CallMeter

#: The folder of the learned model inside a run's folder.
LEARNED_FOLDER = "learned"


class LearnedOutcome(BaseModel):
    """What the learner fitted and how it scored."""

    model_config = ConfigDict(extra="forbid")

    learner: str
    model: str = Field(description="The model string that loads it (local:<folder>).")
    folder: Path
    views: list[str] = Field(description="The views in its product of heads (tfidf, embedding0 = e5, ...).")
    C: float
    labelled_rows: int = Field(description="Train rows it learned from.")
    unlabelled_rows: int = Field(description="Train rows used without their labels (TF-IDF vocabulary).")
    dev_score: float | None
    test_score: float | None
    seconds: float


def labelled_sample(train: Sequence[Example], max_rows: int, seed: int) -> tuple[list[Example], list[Example]]:
    """At most ``max_rows`` train rows (stratified by label, seeded) and the rest."""
    from sklearn.model_selection import train_test_split

    rows = list(train)
    if len(rows) <= max_rows:
        return rows, []
    labels = [e.label for e in rows]
    strat = labels if min(labels.count(label) for label in set(labels)) >= 2 else None
    taken, rest = train_test_split(rows, train_size=max_rows, random_state=seed, stratify=strat)
    return list(taken), list(rest)


def learn(
    spec: ModelSpec,
    task: TaskConfig,
    train: Sequence[Example],
    dev: Sequence[Example],
    test: Sequence[Example],
    folder: Path,
    *,
    max_rows: int,
    seed: int,
    cache_mode: CacheMode = "use",
) -> LearnedOutcome:
    """Fit the few-label heads on (at most ``max_rows`` of) ``train``, save them in ``folder`` and score them.

    Raises:
        ConfigurationError: Not text classification, or train rows with fewer than two labels.
    """
    if task.task_type != "text_classification":
        raise ConfigurationError(f"The few-label learner learns text_classification, not {task.task_type}.")
    started = time.perf_counter()
    labelled, rest = labelled_sample(train, max_rows, seed)
    cache = default_cache(cache_mode)
    head, _ = fit_classifier(
        spec, [e.text for e in labelled], [e.label for e in labelled], [e.text for e in rest], cache
    )
    saved = LearnedClassifier(spec, head).save(folder)
    learned = ModelSpec(model=f"local:{saved}", threads=spec.threads)
    config = task.model_copy(update={"labels": tuple(label for label in task.labels or () if label in head.classes_)})

    def score(rows: Sequence[Example]) -> float | None:
        if not rows:
            return None
        return score_candidate(learned, config, rows, CallMeter(Budget(max_calls=10**12)), cache=cache).score

    return LearnedOutcome(
        learner="few-label",
        model=learned.model,
        folder=saved,
        views=list(head.views_),
        C=head.C_,
        labelled_rows=len(labelled),
        unlabelled_rows=len(rest),
        dev_score=score(dev),
        test_score=score(test),
        seconds=round(time.perf_counter() - started, 3),
    )


def log_learned(outcome: LearnedOutcome) -> None:
    """Its scores as metrics of the active MLflow run and its folder as the run's ``learned`` artifacts."""
    import mlflow

    from openautoglm.adapters.tracking import log_metrics

    scores = {"learned_dev_score": outcome.dev_score, "learned_test_score": outcome.test_score}
    log_metrics({k: v for k, v in scores.items() if v is not None})
    mlflow.log_artifacts(str(outcome.folder), artifact_path=LEARNED_FOLDER)


def winner(prompt_dev_score: float, outcome: LearnedOutcome | None) -> Literal["prompt", "learned"]:
    """``learned`` when the learner scored higher on dev than the best prompt, else ``prompt`` (ties: the
    prompt, whose dev score is the more optimistic one: it was chosen on dev)."""
    if outcome is None or outcome.dev_score is None or outcome.dev_score <= prompt_dev_score:
        return "prompt"
    return "learned"
