"""Annotation rounds: pre-label the pool and queue the rows worth a person's time; train on the labels and move the
model's aliases; record labels and say so (a Prefect event that can start the training).

One parameter model and one function per use case, read by the flows (``flows/annotation.py``), the CLI and the
REST API:

- :class:`AnnotationRoundParams` / :func:`annotation_round`: the current model (the project's registered model at
  ``alias`` when there is one, else the zero-shot ``local-auto``: the cold start) pre-labels the pool (items neither
  labelled, queued nor in the evaluation slice); its predictions go to the store with their scores and the round;
  :func:`~openautoglm.core.annotation.sampling.choose` picks ``size`` rows (margin with diversity on USE embeddings
  by default, seeded) and they are queued.
- :class:`TrainRoundParams` / :func:`train_round`: the label snapshot (evaluation items left out) fits the
  few-label classifier (char TF-IDF and the encoders' embeddings; the unlabelled pool gives the TF-IDF vocabulary),
  which labels the unlabelled pool; a ``tfidf-linear`` student learns the people's labels and the classifier's
  (NER: a ``crf-ner`` student learns the people's entities). The student is registered (so the API loads it as
  ``mlflow:/<name>@<alias>``: the registry loader takes distilled students only, and a student answers in about a
  millisecond) with the round, label count and label digest as tags, scored on the evaluation slice's gold
  answers (adjudicated, else agreed by two annotators), given ``alias`` (``candidate``), and given
  ``promote_alias`` (``production``) only when it scores higher there than the model that alias holds now (or
  ``force``). The score is logged at step = label count (the learning curve).
- :func:`train_if_due`: whether ``min_new_labels`` labels have arrived since the last training.
- :func:`record_labels`: store answers and, when they make a training due (``TrainRoundParams.train_every`` new
  labels outside the evaluation slice since the last training), emit one ``openautoglm.annotation.due`` event: the
  ``train-round-on-labels`` deployment's trigger fires on each one.

Each use case runs its steps through a steps object (:class:`RoundSteps`, :class:`TrainSteps`): plain functions
here, Prefect tasks in the flows, so the logic is written once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from openautoglm.adapters.annotation_store import (
    AnnotationStore,
    Item,
    LabelSnapshot,
    NewAnnotation,
    NewPrediction,
    Project,
    Round,
    Training,
)
from openautoglm.core.annotation.answers import NAME_PATTERN
from openautoglm.core.annotation.sampling import UNCERTAINTY, choose
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.model_names import ModelString
from openautoglm.core.nlp.types import Entity, Row, RowResult, TaskConfig

log = logging.getLogger(__name__)

#: The Prefect event :func:`record_labels` emits when a training becomes due, and the prefix of its resource id
#: (``...project.<name>``).
DUE_EVENT = "openautoglm.annotation.due"
PROJECT_RESOURCE = "openautoglm.annotation.project"
#: The model that pre-labels a project nobody has trained a model for yet, by task: the zero-shot classifier, LAC.
COLD_START = {"text_classification": "local-auto", "ner": "local-lac"}
#: Encoders whose embeddings spread a diverse round.
EMBEDDINGS = {"local-use": "local-use", "local-e5": "local-e5"}


def project_resource(project: str) -> str:
    """The Prefect resource id of a project's events."""
    return f"{PROJECT_RESOURCE}.{project}"


def open_store() -> AnnotationStore:
    """The store of the ``OPENAUTOGLM_ANNOTATIONS_URL`` setting (never a parameter: the URL may hold a password)."""
    return AnnotationStore()


def task_config(project: Project) -> TaskConfig:
    """The model task a project asks for."""
    if project.task_type == "ner":
        return TaskConfig(task_type="ner", entity_types=project.entity_types)
    return TaskConfig(task_type="text_classification", labels=project.labels)


# --- recording labels -----------------------------------------------------------------------------------------


def record_labels(project: str, answers: Sequence[NewAnnotation], *, store: AnnotationStore | None = None) -> int:
    """Store answers (as :meth:`AnnotationStore.record_annotations`) and, when they make a training due, emit one
    ``openautoglm.annotation.due`` event, resource ``openautoglm.annotation.project.<name>`` (what the
    ``train-round-on-labels`` deployment's trigger fires on).

    Due: the labels outside the evaluation slice since the last training's snapshot (the count
    :func:`train_if_due` reads) reach a multiple of ``TrainRoundParams.train_every``. The event goes out once per
    such point (:meth:`AnnotationStore.mark_due`, a conditional update, says which writer sends it), so an
    evaluation answer or a re-answer (the count stays), an undone and re-given answer (the count falls and comes
    back) or two writers racing emit nothing more, and a training whose event was lost is asked for again one
    threshold later. A duplicate firing all the same trains nothing (:func:`train_if_due`). Best effort: no Prefect
    server (``PREFECT_API_URL``), no event and no mark; the answers are stored all the same.

    Returns:
        Answers stored.
    """
    from prefect.settings import PREFECT_API_URL

    store = store or open_store()
    stored = store.record_annotations(project, answers)
    every = train_every()
    last, count = last_label_count(store, project), store.label_count(project)
    new = count - last
    if new >= every and PREFECT_API_URL.value() and store.mark_due(project, last + new // every * every):
        emit_due(project, new, every)
    return stored


def train_every() -> int:
    """The trigger's threshold: the default of :attr:`TrainRoundParams.train_every` (its one declaration)."""
    return int(TrainRoundParams.model_fields["train_every"].default)


def last_label_count(store: AnnotationStore, project: str, name: str | None = None) -> int:
    """The label count of the last training of the registered model ``name`` (default: the project's); 0: none."""
    past = [t for t in store.trainings(project) if t.model_name == (name or project)]
    return past[-1].label_count if past else 0


def new_labels(store: AnnotationStore, project: str, name: str | None = None) -> int:
    """Labels outside the evaluation slice beyond the last training's label count."""
    return store.label_count(project) - last_label_count(store, project, name)


def emit_due(project: str, new: int, every: int) -> None:
    """The ``due`` event (payload: the new labels and the threshold), to the Prefect server of ``PREFECT_API_URL``
    (the caller checks one is named: Prefect would otherwise start an ephemeral server in this process, whose
    triggers no deployment listens to)."""
    try:
        from prefect.events import emit_event

        emit_event(
            event=DUE_EVENT,
            resource={"prefect.resource.id": project_resource(project), "prefect.resource.name": project},
            payload={"new_labels": new, "train_every": every},
        )
    except Exception as error:  # an event lost must not lose the labels stored
        log.warning("could not emit %s for '%s': %s", DUE_EVENT, project, error)


# --- the current model ----------------------------------------------------------------------------------------


class CurrentModel(BaseModel):
    """A model as a round uses it: the model string (a registered version pinned), its version, how it was found."""

    model_config = ConfigDict(frozen=True)

    model: str
    version: str = ""
    source: Literal["explicit", "registry", "cold-start"]


def registered_version(name: str, alias: str) -> str | None:
    """The version ``alias`` points at in the registered model ``name`` (``None``: no such model or alias)."""
    from mlflow.exceptions import MlflowException

    from openautoglm.adapters.tracking import registry_client

    try:
        return str(registry_client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def current_model(model: str | None, name: str, alias: str, task_type: str = "text_classification") -> CurrentModel:
    """``model`` when given; else the version ``alias`` points at in the registered model ``name``
    (``mlflow:/name/version``, pinned so a moving alias cannot change models within a round); else the cold start of
    the task (:data:`COLD_START`)."""
    if model:
        return CurrentModel(model=model, source="explicit")
    version = registered_version(name, alias)
    if version is None:
        return CurrentModel(model=COLD_START[task_type], source="cold-start")
    return CurrentModel(model=f"mlflow:/{name}/{version}", version=version, source="registry")


# --- an annotation round --------------------------------------------------------------------------------------


class AnnotationRoundParams(BaseModel):
    """One annotation round: pre-label the pool with the current model and queue the rows to label next."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: str = Field(pattern=NAME_PATTERN, description="The annotation project.")
    size: int = Field(default=50, ge=1, le=10_000, description="Rows to queue.")
    strategy: str = Field(
        default="margin", description="Uncertainty measure: random, least-confidence, margin, entropy."
    )
    diverse: bool = Field(default=True, description="The most uncertain row of each k-means cluster of embeddings.")
    pool_factor: int = Field(default=10, ge=1, le=100, description="Uncertain rows per queued row the clustering sees.")
    embeddings: Literal["local-use", "local-e5"] = Field(default="local-use", description="Encoder for diversity.")
    seed: int = Field(default=0, ge=0, description="Seeds ties and the k-means.")
    model: ModelString | None = Field(
        default=None,
        description="The model that pre-labels (default: the registered model at `alias`, else local-auto; NER: "
        "local-lac).",
    )
    registered_model: str | None = Field(
        default=None, min_length=1, max_length=128, description="Registered model name (default: the project's)."
    )
    alias: str = Field(default="candidate", min_length=1, description="Which registered version pre-labels.")
    batch_size: int = Field(default=512, ge=1, le=100_000, description="Rows per model batch.")

    @field_validator("strategy")
    @classmethod
    def _known(cls, value: str) -> str:
        try:
            UNCERTAINTY.resolve(value)
        except ValueError as error:
            raise ValueError(str(error)) from None
        return UNCERTAINTY.canonical(value)

    @property
    def name(self) -> str:
        """The registered model name."""
        return self.registered_model or self.project


class RoundSummary(BaseModel):
    """What a round did."""

    model_config = ConfigDict(frozen=True)

    project: str
    round: int
    model: str
    model_version: str
    model_source: str
    pool: int = Field(description="Items pre-labelled: not labelled, not queued, not in the evaluation slice.")
    predictions: int
    queued: int
    item_ids: list[int]
    strategy: str
    diverse: bool
    label_count: int
    label_digest: str
    seconds: float


class Pool(BaseModel):
    """The rows a round may choose from, and the project's labels at the round's start."""

    model_config = ConfigDict(frozen=True)

    project: Project
    round: int
    items: list[Item]
    label_count: int
    label_digest: str


def training_rows(snapshot: LabelSnapshot) -> list[Any]:
    """The snapshot's rows a model may learn from: those outside the evaluation slice."""
    return [row for row in snapshot.rows if not row.eval]


def round_pool(project: str) -> Pool:
    """The next round's number, its pool (items neither answered, queued nor in the evaluation slice) and the
    labels held now."""
    store = open_store()
    spec = store.get_project(project)
    status = store.status(project)
    answered = {a.item_id for a in store.annotations(project)}
    queued = {q.item_id for q in store.queue(project)}
    items = [i for i in store.items(project) if not i.eval and i.id not in answered and i.id not in queued]
    snapshot = store.label_snapshot(project)
    return Pool(
        project=spec,
        round=0 if status.round is None else status.round + 1,
        items=items,
        label_count=len(training_rows(snapshot)),
        label_digest=snapshot.digest,
    )


def prelabel(pool: Pool, current: CurrentModel, batch_size: int) -> list[list[float]]:
    """The current model's answers for the pool, stored as the round's predictions; returns the class probabilities
    per item (rows in the pool's order, columns in the project's labels; NER: one column of ones, every row alike:
    the entity models give no confidence, so the seeded tie-break and the diversity choose)."""
    from openautoglm.adapters.models import ModelSpec
    from openautoglm.adapters.models.run import predict_rows

    spec, config = ModelSpec(model=current.model), task_config(pool.project)
    labels = list(pool.project.labels)
    probs: list[list[float]] = []
    predictions: list[NewPrediction] = []
    for start in range(0, len(pool.items), batch_size):
        batch = pool.items[start : start + batch_size]
        results, _ = predict_rows(spec, config, [Row(row_id=i.id, text=i.text) for i in batch])
        for item, result in zip(batch, results, strict=True):
            scores = result_scores(result, labels)
            probs.append([scores.get(label, 0.0) for label in labels] if labels else [1.0])
            if result.status != "ok" or result.prediction is None:
                continue
            if isinstance(result.prediction, tuple):
                predictions.append(NewPrediction(item_id=item.id, entities=result.prediction))
            else:
                predictions.append(NewPrediction(item_id=item.id, label=str(result.prediction), scores=scores))
    if predictions:
        open_store().add_predictions(
            pool.project.name, predictions, round=pool.round, model=current.model, model_version=current.version
        )
    return probs


def result_scores(result: RowResult, labels: Sequence[str]) -> dict[str, float]:
    """Per-label probabilities of a classification result (its ``raw`` JSON's ``scores``), else all the mass on its
    label (a model that gives no scores is sure)."""
    import json

    if not labels:
        return {}
    try:
        raw = json.loads(result.raw) if result.raw else {}
        scores = raw.get("scores") if isinstance(raw, dict) else None
    except ValueError:
        scores = None
    if isinstance(scores, dict) and scores:
        return {label: float(scores.get(label, 0.0)) for label in labels}
    return {label: float(label == result.prediction) for label in labels}


def choose_rows(pool: Pool, probs: list[list[float]], params: AnnotationRoundParams) -> tuple[list[int], list[float]]:
    """The item ids to queue (most useful first) and their uncertainty scores."""
    if not pool.items:
        return [], []
    embed: Callable[[Sequence[int]], np.ndarray] | None = None
    if params.diverse:
        embed = _embedder([i.text for i in pool.items], params.embeddings)
    chosen = choose(
        np.asarray(probs, dtype=np.float64),
        params.size,
        strategy=params.strategy,
        seed=params.seed,
        embeddings=embed,
        diverse=params.diverse,
        pool_factor=params.pool_factor,
    )
    return [pool.items[i].id for i in chosen.rows], list(chosen.scores)


def _embedder(texts: Sequence[str], encoder: str) -> Callable[[Sequence[int]], np.ndarray]:
    from openautoglm.adapters.models import ModelSpec
    from openautoglm.adapters.models.base import BatchStats
    from openautoglm.adapters.models.learned import embed, feature_encoders
    from openautoglm.adapters.models.run import default_cache

    def vectors(rows: Sequence[int]) -> np.ndarray:
        encoders = feature_encoders(ModelSpec(model=EMBEDDINGS[encoder]))
        return np.hstack(embed(encoders, [texts[i] for i in rows], default_cache(), BatchStats()))

    return vectors


def queue_rows(pool: Pool, current: CurrentModel, ids: list[int], scores: list[float], strategy: str) -> int:
    """Queue the chosen rows and record the round; returns the rows newly queued."""
    store = open_store()
    queued = store.queue_items(pool.project.name, pool.round, ids, strategy=strategy, scores=scores) if ids else 0
    store.record_round(
        pool.project.name,
        Round(
            round=pool.round,
            model=current.model,
            model_version=current.version,
            label_count=pool.label_count,
            label_digest=pool.label_digest,
            queued=queued,
        ),
    )
    return queued


@dataclass(frozen=True)
class RoundSteps:
    """The steps of a round (plain functions; the flow passes Prefect tasks of the same functions)."""

    current_model: Callable[[str | None, str, str, str], CurrentModel] = current_model
    round_pool: Callable[[str], Pool] = round_pool
    prelabel: Callable[[Pool, CurrentModel, int], list[list[float]]] = prelabel
    choose_rows: Callable[[Pool, list[list[float]], AnnotationRoundParams], tuple[list[int], list[float]]] = choose_rows
    queue_rows: Callable[[Pool, CurrentModel, list[int], list[float], str], int] = queue_rows


def annotation_round(params: AnnotationRoundParams, steps: RoundSteps | None = None) -> RoundSummary:
    """Pre-label the pool with the current model and queue the ``size`` rows to label next.

    Raises:
        ProjectNotFound: no such project.
        ConfigurationError: a strategy or model that cannot serve the project.
    """
    steps = steps or RoundSteps()
    started = time.perf_counter()
    pool = steps.round_pool(params.project)
    current = steps.current_model(params.model, params.name, params.alias, pool.project.task_type)
    probs = steps.prelabel(pool, current, params.batch_size)
    ids, scores = steps.choose_rows(pool, probs, params)
    queued = steps.queue_rows(pool, current, ids, scores, params.strategy)
    return RoundSummary(
        project=params.project,
        round=pool.round,
        model=current.model,
        model_version=current.version,
        model_source=current.source,
        pool=len(pool.items),
        predictions=len(probs),
        queued=queued,
        item_ids=ids,
        strategy=params.strategy,
        diverse=params.diverse,
        label_count=pool.label_count,
        label_digest=pool.label_digest,
        seconds=round(time.perf_counter() - started, 3),
    )


# --- a training round -----------------------------------------------------------------------------------------


class TrainRoundParams(BaseModel):
    """Train on a project's labels, register the student, and move its aliases."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: str = Field(pattern=NAME_PATTERN, description="The annotation project.")
    registered_model: str | None = Field(
        default=None, min_length=1, max_length=128, description="Registered model name (default: the project's)."
    )
    alias: str = Field(default="candidate", min_length=1, description="The alias every new version gets.")
    promote_alias: str = Field(
        default="production", min_length=1, description="The alias moved only when the new version scores higher."
    )
    force: bool = Field(default=False, description="Train even when not due, and move promote_alias (an admin's).")
    min_new_labels: int | None = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="Train only when this many labels arrived since the last training (null: train_every, what the "
        "trigger passes).",
    )
    train_every: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        description="New labels (outside the evaluation slice) that make a training due: recording the label that "
        "reaches it emits openautoglm.annotation.due, which starts this training by itself.",
    )
    model: ModelString = Field(
        default="local-auto", description="Whose encoders give the classifier's embedding views (local-auto: e5+USE)."
    )
    max_unlabelled: int = Field(
        default=5000, ge=0, le=1_000_000, description="Unlabelled pool rows the classifier labels for the student."
    )
    self_training: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Self-training: this share of each predicted label's unlabelled rows (the surest) joins the "
        "labels with its predicted label and the classifier is refitted once (0: off). Measured on a development "
        "split of online_shopping_9_cats (docs/annotation-benchmark.md): about +2 points at 500 and 1,000 labels.",
    )
    seed: int = Field(default=0, ge=0, description="Seeds the unlabelled sample and the student.")
    experiment: str = Field(default="annotation", min_length=1, description="MLflow experiment of the runs.")

    @property
    def name(self) -> str:
        """The registered model name."""
        return self.registered_model or self.project

    @property
    def threshold(self) -> int:
        """The new labels this training needs: ``min_new_labels``, else ``train_every``."""
        return self.train_every if self.min_new_labels is None else self.min_new_labels


class Due(BaseModel):
    """Whether a training is due: labels now (outside the evaluation slice), at the last training, and new since."""

    model_config = ConfigDict(frozen=True)

    due: bool
    label_count: int
    last_label_count: int | None
    new_labels: int
    label_digest: str
    reason: str


def train_if_due(project: str, min_new_labels: int, *, name: str | None = None) -> Due:
    """Whether ``min_new_labels`` labels arrived since the last training of the registered model ``name`` (default:
    the project's): idempotent, so a trigger that fires twice trains once. A snapshot already trained on is never
    due; no labels is never due."""
    store = open_store()
    snapshot = store.label_snapshot(project)
    count = len(training_rows(snapshot))
    past = [t for t in store.trainings(project) if t.model_name == (name or project)]
    last = past[-1] if past else None
    new = count - (last.label_count if last else 0)
    if count == 0:
        reason, due = "no labels outside the evaluation slice yet", False
    elif any(t.label_digest == snapshot.digest for t in past):
        reason, due = "this label snapshot was trained on already", False
    elif new < min_new_labels:
        reason, due = f"{new} new labels, fewer than {min_new_labels}", False
    else:
        reason, due = f"{new} new labels", True
    return Due(
        due=due,
        label_count=count,
        last_label_count=last.label_count if last else None,
        new_labels=new,
        label_digest=snapshot.digest,
        reason=reason,
    )


class TrainingData(BaseModel):
    """What a training learns from and is scored on."""

    model_config = ConfigDict(frozen=True)

    project: Project
    round: int
    label_digest: str
    texts: dict[int, str] = Field(description="Training texts by item id: labelled, then unlabelled pool rows.")
    labels: dict[int, Any] = Field(description="The people's answers by item id (labels, or entity tuples).")
    eval_texts: dict[int, str]
    eval_gold: dict[int, Any]


def training_data(project: str, max_unlabelled: int, seed: int) -> TrainingData:
    """The label snapshot split: training labels (outside the evaluation slice), a seeded sample of the unlabelled
    pool rows, and the evaluation slice's gold answers (adjudicated, else agreed)."""
    store = open_store()
    spec = store.get_project(project)
    snapshot = store.label_snapshot(project)
    labelled = {r.item_id: r for r in snapshot.rows}
    train = training_rows(snapshot)
    gold = [r for r in snapshot.rows if r.gold]
    unlabelled = [i for i in store.items(project) if not i.eval and i.id not in labelled]
    rng = np.random.default_rng(seed)
    if len(unlabelled) > max_unlabelled:
        keep = sorted(rng.choice(len(unlabelled), size=max_unlabelled, replace=False).tolist())
        unlabelled = [unlabelled[i] for i in keep]
    status = store.status(project)

    def answer(row: Any) -> Any:
        return row.label if spec.task_type == "text_classification" else tuple(row.entities or ())

    return TrainingData(
        project=spec,
        round=status.round or 0,
        label_digest=snapshot.digest,
        texts={**{r.item_id: r.text for r in train}, **{i.id: i.text for i in unlabelled}},
        labels={r.item_id: answer(r) for r in train},
        eval_texts={r.item_id: r.text for r in gold},
        eval_gold={r.item_id: answer(r) for r in gold},
    )


def fit_student(data: TrainingData, params: TrainRoundParams) -> Any:
    """The student: classification, the few-label classifier (fitted on the labels, its TF-IDF vocabulary from the
    unlabelled rows too) labels the unlabelled rows and a ``tfidf-linear`` student learns those and the people's
    labels; NER, a ``crf-ner`` student learns the people's entities. Returns a
    :class:`~openautoglm.core.nlp.distill.StudentFit` (its metrics include ``classifier_rows``)."""
    from openautoglm.adapters.distill import learn_student
    from openautoglm.core.nlp.distill import DistillOptions, default_student

    config = task_config(data.project)
    options = DistillOptions(name=params.name, student=default_student(config.task_type), holdout=0.0, seed=params.seed)
    labelled = {i: data.labels[i] for i in sorted(data.labels)}
    results = [RowResult(row_id=i, prediction=answer) for i, answer in labelled.items()]
    if config.task_type == "text_classification":
        if len(set(labelled.values())) < 2:
            raise ConfigurationError(
                f"'{data.project.name}' has labels of {len(set(labelled.values()))} class(es) outside the evaluation "
                "slice: a classifier needs two at least.",
                hint="label more rows (a round queues the ones the model is least sure of)",
            )
        results += _classifier_labels(data, labelled, params)
    fit = learn_student(data.texts, results, None, options, config)
    fit.metrics["classifier_rows"] = len(results) - len(labelled)
    return fit


def _classifier_labels(data: TrainingData, labelled: dict[int, Any], params: TrainRoundParams) -> list[RowResult]:
    from openautoglm.adapters.models import ModelSpec
    from openautoglm.adapters.models.learned import LearnedClassifier, fit_classifier
    from openautoglm.adapters.models.run import default_cache

    unlabelled = [i for i in data.texts if i not in labelled]
    if not unlabelled:
        return []
    spec, cache = ModelSpec(model=params.model), default_cache()
    texts, answers = [data.texts[i] for i in labelled], [str(v) for v in labelled.values()]
    head, _ = fit_classifier(spec, texts, answers, [data.texts[i] for i in unlabelled], cache)
    if params.self_training > 0:
        head = self_trained(spec, head, texts, answers, [data.texts[i] for i in unlabelled], params.self_training)
    results, _ = LearnedClassifier(spec, head).predict(
        task_config(data.project), [Row(row_id=i, text=data.texts[i]) for i in unlabelled], cache
    )
    return [r for r in results if r.status == "ok"]


def self_trained(
    spec: Any, head: Any, texts: Sequence[str], answers: Sequence[str], unlabelled: Sequence[str], fraction: float
) -> Any:
    """``head`` (a fitted ``FewLabelClassifier``) refitted once with the surest ``fraction`` of each predicted label's
    unlabelled rows (:func:`~openautoglm.core.annotation.learner.self_trained_heads`; its views, ``C`` and TF-IDF
    vocabulary kept)."""
    from scipy import sparse

    from openautoglm.adapters.models.base import BatchStats
    from openautoglm.adapters.models.learned import feature_encoders
    from openautoglm.adapters.models.run import default_cache
    from openautoglm.core.annotation.learner import self_trained_heads
    from openautoglm.core.nlp.learn import FewLabelClassifier, design

    rows = [*texts, *unlabelled]
    vectorizer, heads = head.parts
    encoders = feature_encoders(spec)
    used = set(head.embedding_views)
    embeddings = [
        encoder.encode(rows, default_cache(), BatchStats()) if i in used else None for i, encoder in enumerate(encoders)
    ]
    empty = sparse.csr_matrix((len(rows), 0), dtype=np.float32)
    views = [design(vectorizer.transform(rows)), *(empty if e is None else design(empty, [e]) for e in embeddings)]
    probs = head.predict_proba(rows, embeddings)
    y = [head.classes_.index(a) for a in answers]
    refitted = self_trained_heads(views, range(len(texts)), y, probs, [v for v, _ in heads], head.C_, fraction=fraction)
    return FewLabelClassifier.from_parts(head.classes_, vectorizer, refitted, head.C_)


def score_model(model: str, data: TrainingData) -> float | None:
    """A model's score on the evaluation slice's gold answers: accuracy (classification) or entity F1 (NER);
    ``None`` with no gold answer yet."""
    from openautoglm.adapters.models import ModelSpec
    from openautoglm.adapters.models.run import predict_rows
    from openautoglm.core.nlp.metrics import ner_metrics

    if not data.eval_gold:
        return None
    ids = sorted(data.eval_gold)
    config = task_config(data.project)
    results, _ = predict_rows(ModelSpec(model=model), config, [Row(row_id=i, text=data.eval_texts[i]) for i in ids])
    predicted = [r.prediction if r.status == "ok" else None for r in results]
    if config.task_type == "ner":
        entities: list[Sequence[Entity] | None] = [p if isinstance(p, tuple) else None for p in predicted]
        lengths = [len(data.eval_texts[i]) for i in ids]
        return float(ner_metrics(lengths, [data.eval_gold[i] for i in ids], entities)["f1"])
    return float(np.mean([p == data.eval_gold[i] for p, i in zip(predicted, ids, strict=True)]))


class TrainSummary(BaseModel):
    """What a training round did (``trained`` false: not due, nothing registered)."""

    model_config = ConfigDict(frozen=True)

    project: str
    trained: bool
    reason: str
    round: int | None = None
    name: str | None = None
    version: int | None = None
    model: str | None = Field(default=None, description="mlflow:/<name>/<version>")
    label_count: int
    label_digest: str
    eval_items: int = 0
    score: float | None = None
    previous_score: float | None = Field(default=None, description="The promote alias's model, same slice.")
    previous_version: str | None = None
    aliases: list[str] = []
    metrics: dict[str, float | int] = {}
    mlflow_run_id: str | None = None
    seconds: float = 0.0


def register_student(fit: Any, data: TrainingData, params: TrainRoundParams) -> TrainSummary:
    """Register the student in an MLflow run (tags round, label_count, label_digest), score it and the
    ``promote_alias``'s model on the evaluation slice, move ``alias`` and (when it scores higher, or ``force``)
    ``promote_alias``, log the score at step = label count, and record the training in the store."""
    from openautoglm.adapters.distill import register
    from openautoglm.adapters.tracking import log_metrics, registry_client, tracked_run
    from openautoglm.core.nlp.distill import DistillOptions

    started = time.perf_counter()
    count = len(data.labels)
    options = DistillOptions(name=params.name, student=fit.kind, holdout=0.0, seed=params.seed, alias=params.alias)
    tags = {
        "openautoglm.annotation.project": data.project.name,
        "round": str(data.round),
        "label_count": str(count),
        "label_digest": data.label_digest,
    }
    with tracked_run(params.experiment, run_name=f"{data.project.name}-round-{data.round}", tags=tags) as run:
        metrics = {**fit.metrics, "label_count": count, "eval_items": len(data.eval_gold)}
        registered, _ = register(fit, options, teacher=f"labels+{params.model}", metrics=metrics)
        client = registry_client()
        for key, value in tags.items():
            client.set_model_version_tag(params.name, str(registered.version), key, value)
        score = score_model(registered.model, data)
        previous_version = registered_version(params.name, params.promote_alias)
        previous = score_model(f"mlflow:/{params.name}/{previous_version}", data) if previous_version else None
        promote = params.force or (score is not None and (previous is None or score > previous))
        aliases = [params.alias]
        if promote:
            client.set_registered_model_alias(params.name, params.promote_alias, str(registered.version))
            aliases.append(params.promote_alias)
        if score is not None:
            log_metrics({"eval_score": score})
            import mlflow

            mlflow.log_metric("eval_score_by_labels", score, step=count)
            client.set_model_version_tag(params.name, str(registered.version), "eval_score", str(score))
            learning_curve(client, run.experiment_id, params.name, count, score, data.round)
        log_metrics(metrics)
    open_store().record_training(
        data.project.name,
        Training(
            round=data.round,
            label_count=count,
            label_digest=data.label_digest,
            model_name=params.name,
            model_version=str(registered.version),
            score=score,
            eval_items=len(data.eval_gold),
            aliases=tuple(aliases),
        ),
    )
    return TrainSummary(
        project=data.project.name,
        trained=True,
        reason=f"registered version {registered.version}",
        round=data.round,
        name=params.name,
        version=registered.version,
        model=registered.model,
        label_count=count,
        label_digest=data.label_digest,
        eval_items=len(data.eval_gold),
        score=score,
        previous_score=previous,
        previous_version=previous_version,
        aliases=aliases,
        metrics=metrics,
        mlflow_run_id=run.run_id,
        seconds=round(time.perf_counter() - started, 3),
    )


#: The tag naming the registered model whose learning curve a run holds.
CURVE_TAG = "openautoglm.annotation.curve"


def learning_curve(client: Any, experiment_id: str, name: str, label_count: int, score: float, round: int) -> str:
    """Add a point to the registered model's learning-curve run (one per model in the experiment, made on first
    use): ``eval_score`` and ``round`` at step = label count, so MLflow draws score against labels in one chart.
    Returns the run's id."""
    found = client.search_runs([experiment_id], filter_string=f"tags.`{CURVE_TAG}` = '{name}'", max_results=1)
    if found:
        run_id = str(found[0].info.run_id)
    else:
        created = client.create_run(experiment_id, run_name=f"{name}-learning-curve", tags={CURVE_TAG: name})
        run_id = str(created.info.run_id)
        client.set_terminated(run_id)
    client.log_metric(run_id, "eval_score", score, step=label_count)
    client.log_metric(run_id, "round", round, step=label_count)
    return run_id


@dataclass(frozen=True)
class TrainSteps:
    """The steps of a training round (plain functions; the flow passes Prefect tasks of the same functions)."""

    due: Callable[..., Due] = train_if_due
    training_data: Callable[[str, int, int], TrainingData] = training_data
    fit_student: Callable[[TrainingData, TrainRoundParams], Any] = fit_student
    register_student: Callable[[Any, TrainingData, TrainRoundParams], TrainSummary] = register_student


def train_round(params: TrainRoundParams, steps: TrainSteps | None = None) -> TrainSummary:
    """Train on the project's labels when due (or ``force``), register the student and move its aliases.

    Raises:
        ProjectNotFound: no such project.
        ConfigurationError: labels of one class only (classification).
    """
    steps = steps or TrainSteps()
    started = time.perf_counter()
    due = steps.due(params.project, params.threshold, name=params.name)
    if not due.due and not params.force:
        return TrainSummary(
            project=params.project,
            trained=False,
            reason=due.reason,
            label_count=due.label_count,
            label_digest=due.label_digest,
        )
    data = steps.training_data(params.project, params.max_unlabelled, params.seed)
    fit = steps.fit_student(data, params)
    summary = steps.register_student(fit, data, params)
    return summary.model_copy(update={"seconds": round(time.perf_counter() - started, 3)})
