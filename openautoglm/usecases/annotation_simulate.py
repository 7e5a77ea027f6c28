"""A simulated annotator: rounds of active learning where a gold column answers for the people.

One use case, one parameter model (:class:`SimulateParams`), one function (:func:`simulate`): the CLI
(``openautoglm annotate simulate``) and ``bench/annotate.py`` both call it. Each round

1. fits the learner ``train_round`` uses (:class:`openautoglm.core.nlp.learn.FewLabelClassifier`: one class-balanced
   logistic head per view -- char 1-3-gram TF-IDF whose vocabulary comes from the labelled and unlabelled pool rows,
   and ``local-auto``'s e5 and USE embeddings --, the views and ``C`` chosen by cross-validation on the labels),
   refitted once with the surest pool rows of each predicted label (self-training,
   ``TrainRoundParams.self_training``: :func:`openautoglm.core.annotation.learner.self_trained_heads`);
2. scores the unlabelled pool with it and chooses ``round_size`` rows with
   :func:`openautoglm.core.annotation.sampling.choose` (the strategy, optionally diverse);
3. reveals their gold labels (the simulated annotator) and records the test accuracy of the model fitted on the
   labels so far: the learning curve.

The first round has no model: it is chosen from a prior's probabilities (the zero-shot model's, ``cold_start=
"zero-shot"``), as the row nearest the centre of each k-means cluster of the embeddings (``"clusters"``,
:func:`~openautoglm.core.annotation.sampling.cover`) or at random. Everything runs in memory; the pool's TF-IDF
matrix and embeddings are computed once (the vocabulary is fitted on the same rows every round, so it does not
change) and the heads are refitted each round -- the same figures as calling ``FewLabelClassifier.fit`` each round
(a unit test checks that), for a fraction of the time.

For long benchmarks the views and ``C`` may be fixed (``views``/``C``, chosen once on development rows) instead of
cross-validated every round (20x fewer fits), and the heads are warm-started from the previous round's coefficients
(the same convex objective, so the same optimum up to the solver's tolerance). Besides the uncertainty measures of
:data:`~openautoglm.core.annotation.sampling.UNCERTAINTY`, ``view-disagreement`` chooses the rows where the views'
heads disagree most (:func:`view_disagreement`). :func:`run_ner_rounds` is the same loop for NER sentences, chosen
by a CRF's token marginals (:func:`sentence_uncertainty`).

Measured: ``bench/annotate.py``, ``docs/annotation-benchmark.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from openautoglm.core.annotation.learner import self_trained_heads, warm_head
from openautoglm.core.annotation.sampling import UNCERTAINTY, choose, cover
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.learn import char_vectorizer, choose_views, design
from openautoglm.usecases.annotation import TrainRoundParams

FloatArray = npt.NDArray[np.float64]
#: The strategy that scores rows by the disagreement of the views' heads (:func:`view_disagreement`).
COMMITTEE = "view-disagreement"
_FLOOR = 1e-9  # as learn.py: the probability of a label a head never saw


class SimulateParams(BaseModel):
    """A simulated labelling run: which data, which gold column answers, how rows are chosen, how many rounds."""

    model_config = ConfigDict(extra="forbid")

    data: Path | None = Field(None, description="CSV, JSONL or Parquet file with a text and a gold column.")
    text_column: str = Field("text", min_length=1)
    gold_column: str = Field("label", min_length=1, description="The simulated annotator's answers.")
    test_rows: int = Field(
        1000, ge=10, le=100_000, description="Rows held out (seeded by test_seed) to score each round; never chosen."
    )
    test_seed: int = Field(0, ge=0, description="Shuffles the data before the test rows are taken (fixed split).")
    strategy: str = Field(
        "margin",
        description="Uncertainty measure: random, least-confidence, margin, entropy; or view-disagreement (the "
        "views' heads as a committee).",
    )
    diverse: bool = Field(False, description="Most uncertain row of each k-means cluster of the embeddings.")
    pool_factor: int = Field(10, ge=1, le=100, description="Uncertain rows per chosen row the clustering sees.")
    balanced: bool = Field(False, description="At most round_size / labels rows per predicted label a round.")
    round_size: int = Field(50, ge=1, le=10_000, description="Rows labelled per round.")
    label_budget: int = Field(1000, ge=1, le=1_000_000, description="Stop when this many rows are labelled.")
    rounds: int | None = Field(None, ge=1, le=10_000, description="At most this many rounds (default: the budget's).")
    cold_start: Literal["zero-shot", "random", "clusters"] = Field(
        "random",
        description="How the first round is chosen (no labels yet): the zero-shot model's margin, random, or the "
        "row nearest the centre of each k-means cluster of the embeddings (clusters).",
    )
    model: str = Field("local-auto", description="Offline model whose encoders give the embedding views.")
    seed: int = Field(0, ge=0, description="Seeds the tie-breaks, the k-means and the random strategy.")
    self_training: float = TrainRoundParams.model_fields["self_training"]  # train_round's learner, declared there
    views: tuple[str, ...] | None = Field(
        None,
        description="Fixed views (e.g. tfidf, embedding0) and C instead of choosing them by cross-validation each "
        "round (as train_round does); 20x fewer fits, for long benchmarks. Needs C.",
    )
    C: float | None = Field(None, gt=0, description="The heads' inverse regularisation with fixed views.")

    @model_validator(mode="after")
    def _known_strategy(self) -> SimulateParams:
        if (self.views is None) != (self.C is None):
            raise ValueError("fixed views need C, and C needs fixed views")
        if self.strategy == COMMITTEE:
            return self
        try:
            UNCERTAINTY.resolve(self.strategy)
        except ValueError:
            raise ValueError(
                f"unknown strategy '{self.strategy}'; use one of: {', '.join(UNCERTAINTY.choices())}"
            ) from None
        return self


class CurvePoint(BaseModel):
    """The model after a round: labels so far and its score on the fixed test rows."""

    round: int
    labels: int
    accuracy: float
    macro_f1: float
    views: list[str]
    seconds: float


class SimulationResult(BaseModel):
    """The learning curve of one run, and its area (mean accuracy over the rounds' label counts, trapezoids)."""

    strategy: str
    diverse: bool
    seed: int
    cold_start: str
    pool_rows: int
    test_rows: int
    curve: list[CurvePoint]
    area: float
    chosen: list[int] = Field(default_factory=list, description="Pool rows in the order they were labelled.")


@dataclass
class Views:
    """The design matrices of every row, computed once: view 0 is TF-IDF, then one per embedding."""

    pool: list[sparse.csr_matrix]
    test: list[sparse.csr_matrix]
    names: tuple[str, ...]
    embeddings: np.ndarray | None  # the pool's first embedding, for the diverse batch mode


def build_views(
    pool_texts: Sequence[str],
    test_texts: Sequence[str],
    pool_embeddings: Sequence[npt.ArrayLike] = (),
    test_embeddings: Sequence[npt.ArrayLike] = (),
) -> Views:
    """TF-IDF fitted on the pool (labelled and unlabelled rows: what ``FewLabelClassifier.fit`` sees), and each
    embedding as its own unit-normalised view."""
    if len(pool_embeddings) != len(test_embeddings):
        raise ConfigurationError("give the same embedding views for the pool and the test rows")
    vectorizer = char_vectorizer(min_df=1 if len(pool_texts) < 50 else 2).fit(list(pool_texts))
    empty_pool = sparse.csr_matrix((len(pool_texts), 0), dtype=np.float32)
    empty_test = sparse.csr_matrix((len(test_texts), 0), dtype=np.float32)
    pool = [design(vectorizer.transform(list(pool_texts)))]
    test = [design(vectorizer.transform(list(test_texts)))]
    for p, t in zip(pool_embeddings, test_embeddings, strict=True):
        pool.append(design(empty_pool, [p]))
        test.append(design(empty_test, [t]))
    names = ("tfidf", *(f"embedding{i}" for i in range(len(pool_embeddings))))
    first = np.asarray(pool_embeddings[0], dtype=np.float64) if len(pool_embeddings) else None
    return Views(pool=pool, test=test, names=names, embeddings=first)


def _log_probs(head: LogisticRegression, x: sparse.spmatrix, k: int) -> FloatArray:
    probs = np.full((x.shape[0], k), _FLOOR)
    probs[:, np.asarray(head.classes_, dtype=np.int64)] += head.predict_proba(x)
    out: FloatArray = np.log(probs)
    return out


def _normalise(logs: FloatArray) -> FloatArray:
    shifted = np.exp(logs - logs.max(axis=1, keepdims=True))
    out: FloatArray = shifted / shifted.sum(axis=1, keepdims=True)
    return out


@dataclass
class Fitted:
    """One round's product of heads, with its probabilities on the pool and the test rows."""

    views: tuple[int, ...]
    C: float
    pool_probs: FloatArray
    test_probs: FloatArray
    #: Each chosen view's own (normalised) probabilities on the pool: the committee of view disagreement.
    view_probs: list[FloatArray] = field(default_factory=list)


def fit_round(
    views: Views,
    rows: Sequence[int],
    y: Sequence[int] | npt.NDArray[np.int64],
    k: int,
    *,
    Cs: Sequence[float] = (4.0, 10.0),
    fixed: tuple[tuple[int, ...], float] | None = None,
    warm: dict[int, LogisticRegression] | None = None,
    self_training: float = 0.0,
) -> Fitted:
    """``FewLabelClassifier.fit`` on precomputed views: views and ``C`` by cross-validation on the labelled rows
    (or ``fixed``), a class-balanced head per chosen view, the product normalised. Labels are indices into all
    ``k`` labels (a label nobody has answered yet gets the floor probability).

    ``warm`` maps a view to its head of the previous round: the new head starts from its coefficients (the same
    convex objective, so the same optimum up to the solver's tolerance, in fewer iterations); it is updated.
    """
    labels = np.asarray(y, dtype=np.int64)
    index = np.asarray(rows, dtype=np.int64)
    if fixed is None:
        # choose_views reads k from the largest label seen: remap to the labels present, as FewLabelClassifier does
        local = np.searchsorted(np.unique(labels), labels)
        chosen, C = choose_views([v[index] for v in views.pool], local, Cs=Cs)
    else:
        chosen, C = fixed
    pool_logs = np.zeros((views.pool[0].shape[0], k))
    test_logs = np.zeros((views.test[0].shape[0], k))
    view_probs = []
    for v in chosen:
        head = warm_head(views.pool[v][index], labels, k, C, None if warm is None else warm.get(v))
        if warm is not None:
            warm[v] = head
        logs = _log_probs(head, views.pool[v], k)
        view_probs.append(_normalise(logs))
        pool_logs += logs
        test_logs += _log_probs(head, views.test[v], k)
    pool_probs, test_probs = _normalise(pool_logs), _normalise(test_logs)
    if self_training > 0:
        # the self-trained heads warm-start from the previous round's self-trained heads (keys -1 - view)
        shifted = None if warm is None else {v: warm[-1 - v] for v in chosen if -1 - v in warm}
        pool_probs, test_probs = _self_train(views, index, labels, k, chosen, C, pool_probs, self_training, shifted)
        if warm is not None and shifted is not None:
            warm.update({-1 - v: head for v, head in shifted.items()})
    return Fitted(views=tuple(chosen), C=float(C), pool_probs=pool_probs, test_probs=test_probs, view_probs=view_probs)


def view_disagreement(view_probs: Sequence[FloatArray]) -> FloatArray:
    """Multi-view query by committee (co-testing; Muslea, Minton & Knoblock 2000; McCallum & Nigam 1998): the mean
    KL divergence of each view's distribution from the committee's mean. High where the views disagree, low where
    they agree -- also where they agree that a row is ambiguous, which uncertainty sampling keeps choosing (a
    product review too generic to name its category)."""
    if len(view_probs) < 2:
        return np.zeros(len(view_probs[0])) if view_probs else np.zeros(0)
    stacked = np.clip(np.stack(view_probs), 1e-12, 1.0)
    mean = stacked.mean(axis=0)
    out: FloatArray = (stacked * (np.log(stacked) - np.log(mean))).sum(axis=2).mean(axis=0)
    return out


def _self_train(
    views: Views,
    index: npt.NDArray[np.int64],
    labels: npt.NDArray[np.int64],
    k: int,
    chosen: Sequence[int],
    C: float,
    pool_probs: FloatArray,
    fraction: float,
    warm: dict[int, LogisticRegression] | None = None,
) -> tuple[FloatArray, FloatArray]:
    """One round of self-training (:func:`openautoglm.core.annotation.learner.self_trained_heads`, what
    ``train_round`` does): the pool's and the test rows' probabilities of the refitted heads."""
    pool_logs = np.zeros((len(pool_probs), k))
    test_logs = np.zeros((views.test[0].shape[0], k))
    for v, head in self_trained_heads(views.pool, index, labels, pool_probs, chosen, C, fraction=fraction, warm=warm):
        pool_logs += _log_probs(head, views.pool[v], k)
        test_logs += _log_probs(head, views.test[v], k)
    return _normalise(pool_logs), _normalise(test_logs)


def _scores(probs: FloatArray, gold: npt.NDArray[np.int64], k: int) -> tuple[float, float]:
    predicted = probs.argmax(axis=1)
    accuracy = float((predicted == gold).mean())
    f1s = []
    for c in range(k):
        tp = float(((predicted == c) & (gold == c)).sum())
        fp = float(((predicted == c) & (gold != c)).sum())
        fn = float(((predicted != c) & (gold == c)).sum())
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return accuracy, float(np.mean(f1s)) if f1s else 0.0


def area_under_curve(points: Sequence[tuple[int, float]]) -> float:
    """Mean score over the label counts of the curve (trapezoids over labels, divided by the span)."""
    if len(points) < 2:
        return float(points[0][1]) if points else 0.0
    xs = np.asarray([p[0] for p in points], dtype=np.float64)
    ys = np.asarray([p[1] for p in points], dtype=np.float64)
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2) / (xs[-1] - xs[0]))


def run_rounds(
    params: SimulateParams,
    views: Views,
    pool_gold: Sequence[str],
    test_gold: Sequence[str],
    *,
    prior: npt.ArrayLike | None = None,
    labels: Sequence[str] | None = None,
    on_round: Callable[[CurvePoint], None] | None = None,
) -> SimulationResult:
    """The rounds over precomputed views (the in-memory engine of :func:`simulate`).

    Args:
        params: Strategy, round size, budget, seed, cold start.
        views: :func:`build_views` of the pool and test rows.
        pool_gold: The simulated annotator's answer for each pool row.
        test_gold: The test rows' labels.
        prior: ``(pool rows, labels)`` zero-shot probabilities for the first round (``cold_start="zero-shot"``),
            columns in ``labels`` order.
        labels: The label set (default: sorted gold labels of pool and test rows).
        on_round: Called with each curve point (progress).
    """
    names = list(labels) if labels is not None else sorted({*map(str, pool_gold), *map(str, test_gold)})
    k = len(names)
    position = {name: i for i, name in enumerate(names)}
    try:
        gold = np.asarray([position[str(v)] for v in pool_gold], dtype=np.int64)
        truth = np.asarray([position[str(v)] for v in test_gold], dtype=np.int64)
    except KeyError as error:
        raise ConfigurationError(f"gold label {error} is not among the labels {names}") from None
    n = len(gold)
    budget = min(params.label_budget, n)
    max_rounds = params.rounds or -(-budget // params.round_size)
    chosen: list[int] = []
    curve: list[CurvePoint] = []
    probs: FloatArray
    if params.cold_start == "zero-shot" and prior is not None:
        # one zero-shot model is no committee: its margin chooses the first round
        probs = np.asarray(prior, dtype=np.float64)
        first_strategy = "margin" if params.strategy == COMMITTEE else params.strategy
    else:
        probs, first_strategy = np.full((n, k), 1.0 / k), "random"
    fixed = None
    if params.views is not None and params.C is not None:
        missing = [v for v in params.views if v not in views.names]
        if missing:
            raise ConfigurationError(f"unknown views {missing}", hint=f"use some of {list(views.names)}")
        fixed = (tuple(views.names.index(v) for v in params.views), float(params.C))
    warm: dict[int, LogisticRegression] = {}
    committee: list[FloatArray] = []
    for round_index in range(max_rounds):
        want = min(params.round_size, budget - len(chosen))
        if want <= 0:
            break
        started = time.perf_counter()
        strategy = first_strategy if round_index == 0 else params.strategy
        ranked_probs = probs
        if strategy == COMMITTEE:
            # choose() ranks by a registered measure of probabilities: least-confidence of [1 - d/2, d/2] is d/2,
            # so the rows come in the order of the disagreement d (scaled to [0, 1]), with the same tie-break and
            # diversity
            d = view_disagreement(committee) if committee else np.zeros(n)
            d = d / d.max() if d.max() > 0 else d
            ranked_probs, strategy = np.column_stack([1 - d / 2, d / 2]), "least-confidence"
        if round_index == 0 and params.cold_start == "clusters" and views.embeddings is not None:
            rows: tuple[int, ...] = cover(views.embeddings, want, seed=params.seed)
        else:
            rows = choose(
                ranked_probs,
                want,
                strategy=strategy,
                seed=params.seed * 1_000_003 + round_index,
                exclude=chosen,
                embeddings=views.embeddings if params.diverse else None,
                diverse=params.diverse and views.embeddings is not None and strategy != "random",
                pool_factor=params.pool_factor,
                balanced=params.balanced and strategy != "random",
            ).rows
        chosen.extend(rows)
        y = gold[chosen]  # the simulated annotator answers
        if len(np.unique(y)) < 2:
            accuracy, macro = _scores(np.tile(np.bincount(y, minlength=k) / len(y), (len(truth), 1)), truth, k)
            fitted_views: list[str] = []
            probs = np.full((n, k), 1.0 / k)
        else:
            fitted = fit_round(views, chosen, y, k, fixed=fixed, warm=warm, self_training=params.self_training)
            probs, committee = fitted.pool_probs, fitted.view_probs
            accuracy, macro = _scores(fitted.test_probs, truth, k)
            fitted_views = [views.names[v] for v in fitted.views]
        point = CurvePoint(
            round=round_index + 1,
            labels=len(chosen),
            accuracy=round(accuracy, 4),
            macro_f1=round(macro, 4),
            views=fitted_views,
            seconds=round(time.perf_counter() - started, 2),
        )
        curve.append(point)
        if on_round is not None:
            on_round(point)
    return SimulationResult(
        strategy=params.strategy if params.strategy == COMMITTEE else UNCERTAINTY.canonical(params.strategy),
        diverse=params.diverse,
        seed=params.seed,
        cold_start=params.cold_start if prior is not None or params.cold_start != "zero-shot" else "random",
        pool_rows=n,
        test_rows=len(truth),
        curve=curve,
        area=round(area_under_curve([(p.labels, p.accuracy) for p in curve]), 4),
        chosen=chosen,
    )


def zero_shot_probs(model: str, texts: Sequence[str], labels: Sequence[str]) -> FloatArray:
    """The zero-shot model's ``(rows, labels)`` probabilities (through the call cache), for a cold start."""
    import json

    from openautoglm.adapters.models import ModelSpec, load_backend
    from openautoglm.adapters.models.run import default_cache
    from openautoglm.core.nlp.types import Row, TaskConfig

    config = TaskConfig(task_type="text_classification", labels=tuple(labels))
    backend = load_backend(ModelSpec(model=model))
    results, _ = backend.predict(config, [Row(i, t) for i, t in enumerate(texts)], default_cache("use"))
    out = np.full((len(texts), len(labels)), 1.0 / len(labels))
    for r in results:
        try:
            scores = json.loads(r.raw).get("scores") or {}
        except (ValueError, AttributeError):
            continue
        if scores:
            out[r.row_id] = [float(scores.get(label, 0.0)) for label in labels]
    normalised: FloatArray = out / out.sum(axis=1, keepdims=True)
    return normalised


def simulate(params: SimulateParams, frame: object | None = None) -> SimulationResult:
    """Run the simulated annotation rounds on ``params.data`` (or a given pandas ``frame``).

    The data are shuffled with ``test_seed``; the first ``test_rows`` rows are the fixed test split, the rest the
    pool the strategy chooses from. Embeddings of every row come from ``params.model``'s encoders through the call
    cache (computed once).

    Raises:
        ConfigurationError: No data, a missing column, or too few rows for the test split.
    """
    import pandas as pd

    from openautoglm.adapters.models import ModelSpec
    from openautoglm.adapters.models.base import BatchStats
    from openautoglm.adapters.models.learned import embed, feature_encoders
    from openautoglm.adapters.models.run import default_cache

    if frame is None:
        if params.data is None:
            raise ConfigurationError("no data to simulate on", hint="set data= to a CSV, JSONL or Parquet file")
        from openautoglm.adapters.sources.load import load_source, spec_from_path

        frame = load_source(spec_from_path(params.data), progress=False).to_pandas()
    if not isinstance(frame, pd.DataFrame):
        raise ConfigurationError("simulate needs a pandas DataFrame")
    for column in (params.text_column, params.gold_column):
        if column not in frame.columns:
            raise ConfigurationError(f"column '{column}' is not in the data", hint=f"columns: {list(frame.columns)}")
    data = frame.dropna(subset=[params.text_column, params.gold_column])
    data = data.sample(frac=1.0, random_state=params.test_seed).reset_index(drop=True)
    if len(data) <= params.test_rows + params.round_size:
        raise ConfigurationError(
            f"{len(data)} rows leave no pool after {params.test_rows} test rows", hint="lower test_rows"
        )
    test, pool = data.iloc[: params.test_rows], data.iloc[params.test_rows :]
    test_texts, pool_texts = (
        test[params.text_column].astype(str).tolist(),
        pool[params.text_column].astype(str).tolist(),
    )
    encoders = feature_encoders(ModelSpec(model=params.model))
    cache, stats = default_cache("use"), BatchStats()
    views = build_views(
        pool_texts,
        test_texts,
        embed(encoders, pool_texts, cache, stats),
        embed(encoders, test_texts, cache, stats),
    )
    labels = sorted({*map(str, pool[params.gold_column]), *map(str, test[params.gold_column])})
    prior = zero_shot_probs(params.model, pool_texts, labels) if params.cold_start == "zero-shot" else None
    return run_rounds(
        params,
        views,
        pool[params.gold_column].astype(str).tolist(),
        test[params.gold_column].astype(str).tolist(),
        prior=prior,
        labels=labels,
    )


# -- NER: sentences chosen by the CRF's token marginals ---------------------------------------------------------------

NerStrategy = Literal["random", "total-entropy", "mean-entropy", "least-confidence"]


class NerPoint(BaseModel):
    """The CRF after a round: sentences and characters labelled so far, entity-level scores on the test sentences."""

    round: int
    sentences: int
    characters: int
    precision: float
    recall: float
    f1: float
    seconds: float


class NerSimulationResult(BaseModel):
    strategy: str
    seed: int
    pool_sentences: int
    test_sentences: int
    curve: list[NerPoint]


def sentence_uncertainty(marginals: Sequence[Sequence[dict[str, float]]], strategy: str) -> FloatArray:
    """One score per sentence from the CRF's per-character label marginals (higher: label first).

    - ``total-entropy``: the sum of the characters' label entropies (Settles & Craven 2008, "total token
      entropy"): long sentences with many unsure characters first;
    - ``mean-entropy``: that sum over the sentence's length;
    - ``least-confidence``: ``1 - prod_t max_y p(y_t)``, the marginals' stand-in for one minus the probability of
      the best tag sequence.
    """
    out = np.zeros(len(marginals))
    for i, sentence in enumerate(marginals):
        if not sentence:
            continue
        matrix = np.asarray([list(token.values()) for token in sentence], dtype=np.float64)
        clipped = np.clip(matrix, 1e-12, 1.0)
        token_entropy = -(clipped * np.log(clipped)).sum(axis=1)
        if strategy == "total-entropy":
            out[i] = token_entropy.sum()
        elif strategy == "mean-entropy":
            out[i] = token_entropy.mean()
        elif strategy == "least-confidence":
            out[i] = 1.0 - float(np.exp(np.log(np.clip(matrix.max(axis=1), 1e-12, 1.0)).sum()))
        else:
            raise ConfigurationError(f"unknown NER strategy '{strategy}'", hint="total-entropy, mean-entropy, ...")
    return out


def run_ner_rounds(
    pool_features: Sequence[Sequence[Sequence[str]]],
    pool_tags: Sequence[Sequence[str]],
    test_features: Sequence[Sequence[Sequence[str]]],
    test_chars: Sequence[Sequence[str]],
    test_tags: Sequence[Sequence[str]],
    *,
    strategy: str = "total-entropy",
    first: int = 500,
    round_size: int = 500,
    budget: int = 3000,
    seed: int = 0,
    entity_types: Sequence[str] = ("PER", "LOC", "ORG"),
    crf_settings: dict[str, float] | None = None,
    on_round: Callable[[NerPoint], None] | None = None,
) -> NerSimulationResult:
    """Rounds of NER labelling: ``first`` random sentences, then ``round_size`` sentences a round chosen by
    :func:`sentence_uncertainty` of a CRF (the settings of :class:`openautoglm.adapters.models.crf.CrfNer`) fitted
    on the sentences so far, until ``budget``; each round's CRF is scored (entity-level, seqeval) on the test
    sentences. Features are precomputed (``CrfNer.features``: characters and LAC's tags)."""
    import random

    import sklearn_crfsuite

    from openautoglm.core.nlp.metrics import bio_to_spans, ner_metrics

    settings = {"c1": 0.02, "c2": 0.02, "max_iterations": 150, **(crf_settings or {})}
    budget = min(budget, len(pool_features))
    order = list(range(len(pool_features)))
    random.Random(seed).shuffle(order)
    chosen: list[int] = order[: min(first, budget)]
    gold = [bio_to_spans(c, t) for c, t in zip(test_chars, test_tags, strict=True)]
    curve: list[NerPoint] = []
    round_index = 0
    while True:
        started = time.perf_counter()
        crf = sklearn_crfsuite.CRF(algorithm="lbfgs", all_possible_transitions=True, **settings)
        crf.fit([pool_features[i] for i in chosen], [pool_tags[i] for i in chosen])
        predicted = [
            bio_to_spans(c, crf.predict_single(f)) if f else () for c, f in zip(test_chars, test_features, strict=True)
        ]
        metrics = ner_metrics([len(c) for c in test_chars], gold, predicted, entity_types)
        point = NerPoint(
            round=round_index + 1,
            sentences=len(chosen),
            characters=sum(len(pool_tags[i]) for i in chosen),
            precision=round(metrics["precision"], 4),
            recall=round(metrics["recall"], 4),
            f1=round(metrics["f1"], 4),
            seconds=0.0,
        )
        want = min(round_size, budget - len(chosen))
        if want > 0:
            taken = set(chosen)
            rest = [i for i in range(len(pool_features)) if i not in taken]
            if strategy == "random":
                picked = [i for i in order if i not in taken][:want]
            else:
                scores = sentence_uncertainty([crf.predict_marginals_single(pool_features[i]) for i in rest], strategy)
                tie = np.random.default_rng(seed * 1_000_003 + round_index).random(len(rest))
                picked = [rest[j] for j in np.lexsort((tie, -scores))[:want]]
            chosen.extend(picked)
            want = len(picked)
        point.seconds = round(time.perf_counter() - started, 2)
        curve.append(point)
        if on_round is not None:
            on_round(point)
        round_index += 1
        if want <= 0:
            break
    return NerSimulationResult(
        strategy=strategy, seed=seed, pool_sentences=len(pool_features), test_sentences=len(test_chars), curve=curve
    )
