"""Distillation: a teacher labels unlabelled rows within a call budget; a small student learns its labels.

Pure pieces, no MLflow, Prefect or network (the teacher is a callable):

- :func:`parse_registry_ref`: ``mlflow:/<name>/<version>`` or ``mlflow:/<name>@<alias>``, nothing else (no paths,
  no ``runs:/`` URIs), so a model string from an untrusted caller can only name a registered model.
- :func:`label_with_budget`: the teacher labels rows in a seeded order, a batch at a time, never passing ``budget``
  calls (a generative teacher may spend two calls on a row: an answer and one repair round, so a batch is sized
  to what is left and a call meter refuses anything beyond).
- :func:`holdout_split`: the seeded split of the labelled rows into the student's training rows and held-out rows.
- :data:`STUDENTS`: student kinds by name. ``tfidf-linear``: hashed character 1-3-gram TF-IDF + logistic regression
  (scikit-learn), a plain ``Pipeline`` over a one-column frame ``text`` so MLflow logs it with the sklearn flavour
  (skops format: safe to load) and serves it as a pyfunc. ``crf-ner``: the NER CRF (``tasks={"ner"}``).
- :func:`distill_metrics`: agreement with the teacher, and accuracy of both against gold labels, on held-out rows.

NER: :func:`fit_ner_student` trains a ``crf-ner`` student (the CRF of :mod:`openautoglm.adapters.models.crf`,
passed in as ``learn``/``predict`` callables: its features need LAC) on the teacher's entity answers, and
:func:`ner_distill_metrics` measures entity F1 against the teacher (agreement) and against gold entities.

Why not :class:`~openautoglm.core.nlp.learn.FewLabelClassifier`: it is a dataclass around a vectoriser and a head
(with optional encoder views), not an estimator MLflow can log and serve; and its vocabulary-based vectoriser
serialised to 37 MB of skops schema for waimai_10k against 8.5 MB hashed (and a vocabulary stores n-grams of the
training texts in the model; hashed buckets do not). On a dev slice of waimai_10k train rows (6,000 fit, 1,987 dev,
gold labels) hashing with C=10 reached 89.9% against 90.0% for the vocabulary with C=4.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.model_names import model_scheme, normalize_model
from openautoglm.core.nlp.metrics import ner_metrics
from openautoglm.core.nlp.tagging import LabelledSentence, entity_types, labelled_sentence
from openautoglm.core.nlp.types import Entity, Row, RowResult, TaskType
from openautoglm.core.prompt.budget import Budget, CallMeter, metered
from openautoglm.core.registry import Registry

S = TypeVar("S")

#: The model-string prefix of registered models.
PREFIX = "mlflow:"
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}"
_REF = re.compile(
    rf"^mlflow:/(?P<name>{_NAME})(?:/(?P<version>[1-9][0-9]{{0,8}})|@(?P<alias>[A-Za-z][A-Za-z0-9_\-]{{0,63}}))$"
)
#: The one input column of a student (its MLflow signature).
TEXT = "text"


@dataclass(frozen=True)
class RegistryRef:
    """A registered model version: by number or by alias."""

    name: str
    version: int | None = None
    alias: str | None = None

    @property
    def uri(self) -> str:
        """The MLflow model URI (``models:/name/3`` or ``models:/name@alias``)."""
        return "models:" + self.model.removeprefix(PREFIX)

    @property
    def model(self) -> str:
        """The model string this reference came from."""
        where = f"/{self.version}" if self.version is not None else f"@{self.alias}"
        return f"{PREFIX}/{self.name}{where}"


def check_model_name(name: str) -> str:
    """``name`` if a registered model may take it (letters, digits, ``_ . -``, up to 128, a letter or digit first).

    Raises:
        ConfigurationError: Any other name (a model string could not name it).
    """
    if re.fullmatch(_NAME, name) is None:
        raise ConfigurationError(
            f"'{name}' cannot be a registered model name.",
            hint="use letters, digits, _ . - (up to 128 characters, starting with a letter or digit)",
        )
    return name


def is_registry_model(model: str) -> bool:
    """Whether a model string uses the registered-model prefix (well-formed or not)."""
    return model_scheme(model) == "mlflow"


def parse_registry_ref(model: str) -> RegistryRef:
    """``mlflow:/<name>/<version>`` or ``mlflow:/<name>@<alias>``; anything else raises.

    Names are letters, digits, ``_ . -`` (up to 128); versions are positive integers. Paths, ``runs:/`` and
    other URIs are refused: a model string may come from a job's caller.

    Raises:
        ConfigurationError: Not one of the two forms.
    """
    try:
        normal = normalize_model(model)
    except ConfigurationError:
        normal = None
    match = _REF.fullmatch(normal) if normal is not None else None
    if match is None:
        raise ConfigurationError(
            f"'{model}' is not a registered model reference.",
            hint="use mlflow:/<name>/<version> or mlflow:/<name>@<alias> (a name of letters, digits, _ . -); for a "
            "model folder use local:/path/to/folder",
        )
    version = match.group("version")
    return RegistryRef(match.group("name"), int(version) if version else None, match.group("alias"))


# --- the teacher ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeacherLabels(Generic[S]):
    """What the teacher answered, in the order the rows were sent.

    Attributes:
        results: One per row sent (any status).
        stats: One item per batch, as the teacher's callable returned it.
        rows_sent: Rows sent to the teacher.
        calls: Teacher calls counted against the budget (a generative teacher: chat requests, cached or not;
            otherwise rows).
        fresh_calls: Calls that reached the teacher (not answered by the cache); ``None`` when not metered.
    """

    results: list[RowResult]
    stats: list[S]
    rows_sent: int
    calls: int
    fresh_calls: int | None


def seeded_order(n: int, seed: int) -> list[int]:
    """A seeded permutation of ``range(n)``: the order in which rows go to the teacher (a budget then labels a
    random sample, not the head of the file)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


def label_with_budget(
    rows: Sequence[Row],
    teacher: Callable[[list[Row]], tuple[list[RowResult], S]],
    *,
    budget: int,
    batch_size: int = 64,
    calls_per_row: int = 1,
    meter: bool = False,
) -> TeacherLabels[S]:
    """Send rows to the teacher in order, a batch at a time, until the rows or the budget run out.

    Args:
        rows: The rows, in the order they should be labelled.
        teacher: Labels a batch; returns one result per row and the batch's counts.
        budget: At most this many teacher calls.
        batch_size: Rows per batch (a batch near the end is cut to the calls left).
        calls_per_row: The most calls one row can cost (2 for a chat model: an answer and one repair).
        meter: Count calls with a :class:`~openautoglm.core.prompt.budget.CallMeter` (the teacher's backend
            charges it per request); otherwise each row counts as one call.

    Raises:
        ConfigurationError: A budget, batch size or call cost below 1.
    """
    if budget < 1 or batch_size < 1 or calls_per_row < 1:
        raise ConfigurationError(
            f"budget ({budget}), batch_size ({batch_size}) and calls_per_row ({calls_per_row}) must be >= 1."
        )
    calls_meter = CallMeter(Budget(max_calls=budget)) if meter else None
    results: list[RowResult] = []
    stats: list[S] = []
    sent = 0
    while sent < len(rows):
        spent = sent if calls_meter is None else max(calls_meter.spent.calls, calls_meter.spent.fresh_calls)
        take = min(batch_size, len(rows) - sent, (budget - spent) // calls_per_row)
        if take <= 0:
            break
        batch = list(rows[sent : sent + take])
        if calls_meter is None:
            answered, counts = teacher(batch)
        else:
            with metered(calls_meter):
                answered, counts = teacher(batch)
        if len(answered) != len(batch):
            raise ConfigurationError(f"the teacher answered {len(answered)} of {len(batch)} rows")
        results.extend(answered)
        stats.append(counts)
        sent += take
    if calls_meter is None:
        return TeacherLabels(results, stats, sent, sent, None)
    return TeacherLabels(results, stats, sent, calls_meter.spent.calls, calls_meter.spent.fresh_calls)


def holdout_split(n: int, holdout: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split of ``range(n)`` into (train, held-out); at least one row on each side when ``n >= 2`` and
    ``holdout > 0``.

    Raises:
        ConfigurationError: ``holdout`` outside [0, 0.9].
    """
    if not 0.0 <= holdout <= 0.9:
        raise ConfigurationError(f"holdout must be in [0, 0.9], got {holdout}.")
    order = seeded_order(n, seed + 1)
    held = 0 if holdout == 0 or n < 2 else min(n - 1, max(1, round(n * holdout)))
    return sorted(order[held:]), sorted(order[:held])


# --- the student ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudentKind:
    """A kind of student: the tasks it learns and how to build an unfitted one.

    Attributes:
        tasks: Tasks it can learn.
        build: ``seed -> estimator``: an unfitted scikit-learn estimator taking a frame with column ``text``
            (classification students; a NER student is built by the adapter that owns its features).
        description: One line for docs and errors.
    """

    tasks: frozenset[TaskType]
    build: Callable[[int], Any] | None
    description: str


#: Student kinds by name (``tfidf-linear``; a NER CRF student registers here too).
STUDENTS: Registry[StudentKind] = Registry("student", base=StudentKind)


def tfidf_linear(seed: int = 0, *, n_features: int = 2**20, C: float = 10.0) -> Any:
    """Hashed character 1-3-gram TF-IDF (sublinear tf, ``n_features`` buckets) + logistic regression.

    Args:
        seed: Seed of the solver.
        n_features: Hash buckets.
        C: Inverse regularisation (10: best of 1 / 4 / 10 on a dev slice of waimai_10k train rows).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    # strip_accents="unicode" applies NFKD: full-width and half-width forms (，/,) become one, so a student trained
    # on raw SDK rows reads the cleaned rows of a flow (NFKC) the same way, and the other way round.
    hashed = HashingVectorizer(
        analyzer="char",
        ngram_range=(1, 3),
        n_features=n_features,
        alternate_sign=False,
        norm=None,
        strip_accents="unicode",
        dtype=np.float32,
    )
    features = Pipeline([("hash", hashed), ("tfidf", TfidfTransformer(sublinear_tf=True))])
    return Pipeline(
        [
            ("features", ColumnTransformer([("char_tfidf", features, TEXT)])),
            ("linear", LogisticRegression(C=C, max_iter=3000, random_state=seed)),
        ]
    )


STUDENTS.add(
    "tfidf-linear",
    StudentKind(
        tasks=frozenset({"text_classification"}),
        build=tfidf_linear,
        description="hashed char 1-3-gram TF-IDF + logistic regression (scikit-learn)",
    ),
    "tfidf",
)
STUDENTS.add(
    "crf-ner",
    StudentKind(
        tasks=frozenset({"ner"}),
        build=None,  # openautoglm.adapters.models.crf.CrfNer: its features include LAC's tags (an adapter)
        description="a CRF over character n-grams and LAC's word tags (sklearn-crfsuite)",
    ),
    "crf",
)


def default_student(task_type: TaskType) -> str:
    """The first registered student kind that learns ``task_type`` (``tfidf-linear``, ``crf-ner``).

    Raises:
        ConfigurationError: No student learns it.
    """
    for name, kind in STUDENTS.items():
        if task_type in kind.tasks:
            return name
    raise ConfigurationError(f"No student learns {task_type}.", hint="distil text_classification or ner")


def gold_answers(ids: Sequence[Any], values: Sequence[Any], task_type: TaskType) -> dict[int, Any]:
    """Gold answers by row id: labels as strings; NER entity lists (or their JSON) as given; missing -> ``None``."""
    out: dict[int, Any] = {}
    for row_id, value in zip(ids, values, strict=True):
        missing = value is None or (isinstance(value, float) and value != value)
        out[int(row_id)] = None if missing else (value if task_type == "ner" else str(value))
    return out


def train_student(kind: str, texts: Sequence[str], labels: Sequence[str], *, seed: int = 0) -> Any:
    """Fit a student of ``kind`` on (text, teacher label) pairs.

    Raises:
        ConfigurationError: Lengths differ, or fewer than two labels among the rows.
    """
    import pandas as pd

    if len(texts) != len(labels):
        raise ConfigurationError(f"{len(texts)} texts but {len(labels)} labels.")
    if len(set(labels)) < 2:
        raise ConfigurationError(
            f"The teacher gave {len(texts)} training rows {sorted(set(labels))}: a student needs two labels at least.",
            hint="raise the budget, or give more (and more varied) unlabelled rows",
        )
    build = STUDENTS.resolve(kind).build
    if build is None:
        raise ConfigurationError(f"A {kind} student does not learn labels.", hint="use tfidf-linear")
    return build(seed).fit(pd.DataFrame({TEXT: list(texts)}), list(labels))


def student_proba(student: Any, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The student's classes and ``(n, k)`` probabilities for ``texts``."""
    import pandas as pd

    classes = [str(c) for c in student.classes_]
    if not texts:
        return classes, np.zeros((0, len(classes)))
    return classes, np.asarray(student.predict_proba(pd.DataFrame({TEXT: list(texts)})), dtype=np.float64)


def student_predict(student: Any, texts: Sequence[str]) -> list[str]:
    """The student's label for each text."""
    classes, probs = student_proba(student, texts)
    return [classes[i] for i in probs.argmax(axis=1)] if len(texts) else []


# --- evaluation ----------------------------------------------------------------------------------------------


def _share(a: Sequence[Any], b: Sequence[Any]) -> float | None:
    return None if not a else float(np.mean([x == y for x, y in zip(a, b, strict=True)]))


def distill_metrics(
    student: Sequence[str], teacher: Sequence[str], gold: Sequence[str | None] | None = None
) -> dict[str, float | int]:
    """Held-out rows: the student's agreement with the teacher; with gold labels, both accuracies and their ratio.

    Args:
        student, teacher: Labels of the same held-out rows.
        gold: Gold labels of those rows (``None`` where a row has none).
    """
    out: dict[str, float | int] = {"holdout_rows": len(student)}
    agreement = _share(student, teacher)
    if agreement is not None:
        out["agreement"] = round(agreement, 4)
    if gold is not None:
        keep = [i for i, g in enumerate(gold) if g is not None and g == g and str(g) != ""]
        if keep:
            golds = [str(gold[i]) for i in keep]
            s_acc = _share([student[i] for i in keep], golds) or 0.0
            t_acc = _share([teacher[i] for i in keep], golds) or 0.0
            out.update(gold_rows=len(keep), student_accuracy=round(s_acc, 4), teacher_accuracy=round(t_acc, 4))
            if t_acc > 0:
                out["accuracy_ratio"] = round(s_acc / t_acc, 4)
    return out


def ner_distill_metrics(
    texts: Sequence[str],
    student: Sequence[Sequence[Entity]],
    teacher: Sequence[Sequence[Entity]],
    gold: Sequence[Sequence[Entity] | None] | None = None,
) -> dict[str, float | int]:
    """Held-out sentences: the student's entity F1 against the teacher's entities (its agreement); with gold
    entities, both F1s (seqeval, exact span and type) and their ratio."""
    lengths = [len(t) for t in texts]
    out: dict[str, float | int] = {"holdout_rows": len(texts)}
    if texts:
        out["agreement_f1"] = round(ner_metrics(lengths, teacher, student)["f1"], 4)
    if gold is not None:
        keep = [i for i, g in enumerate(gold) if g is not None]
        if keep:
            golds = [gold[i] or () for i in keep]
            kept = [lengths[i] for i in keep]
            s_f1 = ner_metrics(kept, golds, [student[i] for i in keep])["f1"]
            t_f1 = ner_metrics(kept, golds, [teacher[i] for i in keep])["f1"]
            out.update(gold_rows=len(keep), student_f1=round(s_f1, 4), teacher_f1=round(t_f1, 4))
            if t_f1 > 0:
                out["f1_ratio"] = round(s_f1 / t_f1, 4)
    return out


def fit_ner_student(
    texts: Mapping[int, str],
    results: Sequence[RowResult],
    gold: Mapping[int, Any] | None,
    options: DistillOptions,
    *,
    learn: Callable[[list[LabelledSentence]], Any],
    predict: Callable[[Any, list[str]], list[tuple[Entity, ...]]],
) -> StudentFit:
    """Train a NER student on the teacher's entities; measure it on held-out sentences.

    A teacher answer whose entities do not match its sentence, or any answer that failed, is unusable (counted,
    not trained on); so is a gold value that is not a valid entity list (that sentence has no gold).

    Args:
        texts: Text by row id.
        results: The teacher's answers (entity tuples).
        gold: Gold entities by row id (lists, JSON or ``None``), where known.
        options: Hold-out share, seed.
        learn: Fits a student on labelled sentences.
        predict: The student's entities for texts.
    """
    usable: list[tuple[int, LabelledSentence]] = []
    for r in results:
        if r.status == "ok" and isinstance(r.prediction, tuple):
            try:
                usable.append((r.row_id, labelled_sentence(texts[r.row_id], list(r.prediction))))
            except ConfigurationError:
                continue
    if not usable:
        raise ConfigurationError(
            f"The teacher answered none of {len(results)} sentences with entities that match them.",
            hint="check the teacher's key and entity types (see the teacher's status counts), or raise the budget",
        )
    train, held = holdout_split(len(usable), options.holdout, options.seed)
    train_sentences = [usable[i][1] for i in train]
    student = learn(train_sentences)
    held_texts = [usable[i][1].text for i in held]
    golds = None if gold is None else [_gold_entities(usable[i][1].text, gold.get(usable[i][0])) for i in held]
    metrics = ner_distill_metrics(
        held_texts, predict(student, held_texts), [usable[i][1].entities for i in held], golds
    )
    metrics.update(train_rows=len(train), teacher_unusable_rows=len(results) - len(usable))
    return StudentFit(
        student=student,
        kind=options.student,
        labels=list(entity_types(train_sentences)),
        metrics=metrics,
        examples=[sentence.text for sentence in train_sentences[:3]],
    )


def _gold_entities(text: str, value: Any) -> tuple[Entity, ...] | None:
    if value is None or (isinstance(value, float) and value != value) or (isinstance(value, str) and not value):
        return None
    try:
        return labelled_sentence(text, value).entities
    except ConfigurationError:
        return None


# --- the whole step ------------------------------------------------------------------------------------------


class DistillOptions(BaseModel):
    """How to distil: the student, the budget, the split, where to register. Secret-free (a flow parameter)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128, description="Registered model name (letters, digits, _ . -).")
    student: str = Field(
        default="tfidf-linear", description="Student kind: tfidf-linear (classification) or crf-ner (NER)."
    )
    budget: int | None = Field(
        default=None, ge=1, description="At most this many teacher calls (default: one per unlabelled row)."
    )
    holdout: float = Field(default=0.2, ge=0.0, le=0.9, description="Share of the labelled rows held out.")
    seed: int = Field(default=0, description="Seed of the labelling order, the split and the student.")
    alias: str | None = Field(default=None, description="An alias to point at the new version, e.g. candidate.")

    @model_validator(mode="after")
    def _check(self) -> DistillOptions:
        check_model_name(self.name)
        if self.alias is not None:
            parse_registry_ref(f"mlflow:/{self.name}@{self.alias}")
        STUDENTS.resolve(self.student)
        return self


@dataclass
class StudentFit:
    """A fitted student and how it measured on held-out rows."""

    student: Any
    kind: str
    labels: list[str]
    metrics: dict[str, float | int]
    examples: list[str]


def fit_student(
    texts: Mapping[int, str],
    results: Sequence[RowResult],
    gold: Mapping[int, str | None] | None,
    options: DistillOptions,
    labels: Sequence[str],
) -> StudentFit:
    """Train the student on the teacher's usable answers (a label of the set); measure it on held-out rows.

    Args:
        texts: Text by row id.
        results: The teacher's answers (row ids index ``texts``).
        gold: Gold label by row id, where known.
        options: Student kind, hold-out share, seed.
        labels: The label set.
    """
    usable = [r for r in results if r.status == "ok" and r.prediction in set(labels)]
    if not usable:
        raise ConfigurationError(
            f"The teacher answered none of {len(results)} rows with a label of {list(labels)}.",
            hint="check the teacher's key and labels (see the teacher's status counts), or raise the budget",
        )
    train, held = holdout_split(len(usable), options.holdout, options.seed)
    train_rows = [usable[i] for i in train]
    held_rows = [usable[i] for i in held]
    student = train_student(
        options.student,
        [texts[r.row_id] for r in train_rows],
        [str(r.prediction) for r in train_rows],
        seed=options.seed,
    )
    predicted = student_predict(student, [texts[r.row_id] for r in held_rows])
    teacher = [str(r.prediction) for r in held_rows]
    golds = [gold.get(r.row_id) for r in held_rows] if gold is not None else None
    metrics = distill_metrics(predicted, teacher, golds)
    metrics.update(train_rows=len(train_rows), teacher_unusable_rows=len(results) - len(usable))
    return StudentFit(
        student=student,
        kind=options.student,
        labels=[str(c) for c in student.classes_],
        metrics=metrics,
        examples=[texts[r.row_id] for r in train_rows[:3]],
    )
