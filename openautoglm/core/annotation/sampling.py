"""Choosing the rows people label next: uncertainty measures behind a registry, and a batch mode with diversity.

A round of labelling asks people about the rows the current model is least sure of (active learning; Settles 2009,
"Active Learning Literature Survey"). The model's class probabilities ``(rows, labels)`` are scored by an
uncertainty measure from :data:`UNCERTAINTY` (higher: label first):

- ``random``: every row alike (the baseline; the seeded tie-break orders them at random);
- ``least-confidence``: ``1 - max p``;
- ``margin``: ``1 - (p1 - p2)``, the gap between the two likeliest labels (Scheffer et al. 2001);
- ``entropy``: ``-sum p log p``, normalised by ``log(labels)``.

Ties (many rows with the same score, e.g. a cold-start model that is unsure everywhere) are broken by a seeded random
key, so a round never depends on row order. A round of ``k`` uncertain rows is often ``k`` near-duplicates; with
``diverse=True`` the ``pool_factor * k`` most uncertain rows are clustered into ``k`` groups by k-means on their
embeddings and the most uncertain row of each group is taken (Zhdanov 2019, "Diverse mini-batch active learning"),
topped up by the next most uncertain rows where clusters come out empty. The first round is chosen from the zero-shot
model's probabilities (a cold start needs no labels). Everything here is pure and seeded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.registry import Registry

FloatArray = npt.NDArray[np.float64]
Uncertainty = Callable[[FloatArray], FloatArray]

#: Uncertainty measures by name: ``(rows, labels)`` probabilities -> one score per row, higher = label first.
UNCERTAINTY: Registry[Uncertainty] = Registry("uncertainty measure")


@UNCERTAINTY.register("random")
def random_order(probs: FloatArray) -> FloatArray:
    """Every row alike: the seeded tie-break alone orders them."""
    return np.zeros(len(probs))


@UNCERTAINTY.register("least-confidence", "least_confidence", "confidence")
def least_confidence(probs: FloatArray) -> FloatArray:
    """``1 - max p``."""
    out: FloatArray = 1.0 - probs.max(axis=1)
    return out


@UNCERTAINTY.register("margin")
def margin(probs: FloatArray) -> FloatArray:
    """``1 - (p1 - p2)``: one minus the gap between the two likeliest labels."""
    if probs.shape[1] < 2:
        return np.zeros(len(probs))
    top = np.sort(probs, axis=1)
    return 1.0 - (top[:, -1] - top[:, -2])


@UNCERTAINTY.register("entropy")
def entropy(probs: FloatArray) -> FloatArray:
    """Shannon entropy of the row's distribution over ``log(labels)`` (0: sure, 1: uniform)."""
    clipped = np.clip(probs, 1e-12, 1.0)
    out: FloatArray = -(clipped * np.log(clipped)).sum(axis=1) / max(math.log(probs.shape[1]), 1e-12)
    return out


@dataclass(frozen=True)
class Choice:
    """The rows chosen for a round, most uncertain first, with their uncertainty (as the measure scored it)."""

    rows: tuple[int, ...]
    scores: tuple[float, ...]
    strategy: str
    diverse: bool


def choose(
    probs: npt.ArrayLike,
    k: int,
    *,
    strategy: str = "margin",
    seed: int = 0,
    exclude: Collection[int] = (),
    embeddings: npt.ArrayLike | Callable[[Sequence[int]], npt.ArrayLike] | None = None,
    diverse: bool = False,
    pool_factor: int = 10,
    balanced: bool = False,
) -> Choice:
    """The ``k`` rows to label next (fewer when fewer are left).

    Args:
        probs: ``(rows, labels)`` class probabilities of the current model (the zero-shot model's on a cold start).
        k: Rows to choose.
        strategy: A name in :data:`UNCERTAINTY`.
        seed: Seeds the tie-break and the k-means.
        exclude: Rows never chosen (labelled already, queued, or in the evaluation slice).
        embeddings: ``(rows, dims)`` vectors of the rows, or a function returning the vectors of the rows it is
            given (called once, with the ``pool_factor * k`` most uncertain rows only: embedding a whole pool is
            the slow part of a round); needed with ``diverse``.
        diverse: Cluster the ``pool_factor * k`` most uncertain rows into ``k`` groups and take each group's most
            uncertain row.
        pool_factor: How many times ``k`` uncertain rows the clustering looks at.
        balanced: At most ``ceil(k / labels)`` rows per predicted label, in rank order (the rest by rank where too
            few remain): a round is not spent on the confusions of one pair of labels while a rare one goes unseen.

    Raises:
        ConfigurationError: An unknown strategy, a bad ``k``, probabilities that are not a 2-d array, or
            ``diverse`` without embeddings of every row.
    """
    matrix = np.asarray(probs, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 1:
        raise ConfigurationError(f"probabilities must be a (rows, labels) array, not of shape {matrix.shape}")
    if k < 1:
        raise ConfigurationError(f"a round chooses at least one row, not {k}")
    try:
        measure = UNCERTAINTY.resolve(strategy)
    except ValueError as error:
        raise ConfigurationError(str(error), hint=f"use one of: {', '.join(UNCERTAINTY.choices())}") from None
    name = UNCERTAINTY.canonical(strategy)
    scores = measure(matrix)
    tie = np.random.default_rng(seed).random(len(matrix))
    excluded = np.zeros(len(matrix), dtype=bool)
    excluded[[i for i in exclude if 0 <= i < len(matrix)]] = True
    candidates = np.flatnonzero(~excluded)
    # Most uncertain first, the seeded key breaking ties (lexsort: last key is the primary one).
    ranked = candidates[np.lexsort((tie[candidates], -scores[candidates]))]
    if balanced:
        ranked = _balanced(ranked, matrix, k if not diverse else max(k, pool_factor * k))
    if not diverse:
        picked = [int(i) for i in ranked[:k]]
    else:
        if embeddings is None:
            raise ConfigurationError("diverse rounds need the rows' embeddings", hint="pass embeddings=")
        pool = ranked[: max(k, pool_factor * k)]
        if callable(embeddings):
            vectors = np.asarray(embeddings([int(i) for i in pool]), dtype=np.float64)
            expected = len(pool)
        else:
            vectors = np.asarray(embeddings, dtype=np.float64)
            expected = len(matrix)
        if vectors.ndim != 2 or len(vectors) != expected:
            raise ConfigurationError(f"embeddings of shape {vectors.shape} do not match {expected} rows")
        picked = _diverse(pool, vectors if callable(embeddings) else vectors[pool], k, seed)
    return Choice(
        rows=tuple(int(i) for i in picked),
        scores=tuple(float(scores[i]) for i in picked),
        strategy=name,
        diverse=diverse,
    )


def _balanced(ranked: npt.NDArray[np.int64], probs: FloatArray, k: int) -> npt.NDArray[np.int64]:
    """``ranked`` reordered so that its first ``k`` rows hold at most ``ceil(k / labels)`` of each predicted label
    (in rank order), then the rest in rank order."""
    predicted = probs.argmax(axis=1)
    quota = math.ceil(k / probs.shape[1])
    taken: dict[int, int] = {}
    first: list[int] = []
    rest: list[int] = []
    for row in ranked:
        label = int(predicted[row])
        if len(first) < k and taken.get(label, 0) < quota:
            taken[label] = taken.get(label, 0) + 1
            first.append(int(row))
        else:
            rest.append(int(row))
    return np.asarray(first + rest, dtype=np.int64)


def cover(embeddings: npt.ArrayLike, k: int, *, seed: int = 0, exclude: Collection[int] = ()) -> tuple[int, ...]:
    """A cold start that covers the pool: ``k`` k-means clusters of the rows' embeddings and, of each, the row
    nearest its centre (no model, no labels needed). A round of random rows misses a rare label more often than
    one row per region of the embedding space does.

    Raises:
        ConfigurationError: Embeddings that are not a 2-d array, or a bad ``k``.
    """
    from sklearn.cluster import KMeans

    vectors = np.asarray(embeddings, dtype=np.float64)
    if vectors.ndim != 2:
        raise ConfigurationError(f"embeddings must be a (rows, dims) array, not of shape {vectors.shape}")
    if k < 1:
        raise ConfigurationError(f"a round chooses at least one row, not {k}")
    excluded = set(exclude)
    candidates = np.asarray([i for i in range(len(vectors)) if i not in excluded], dtype=np.int64)
    if len(candidates) <= k:
        return tuple(int(i) for i in candidates)
    points = vectors[candidates]
    model = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(points)
    distance = ((points - model.cluster_centers_[model.labels_]) ** 2).sum(axis=1)
    nearest: dict[int, int] = {}
    for position in np.argsort(distance, kind="stable"):
        nearest.setdefault(int(model.labels_[position]), int(position))
    return tuple(sorted(int(candidates[p]) for p in nearest.values()))


def _diverse(pool: npt.NDArray[np.int64], vectors: FloatArray, k: int, seed: int) -> list[int]:
    """The most uncertain row of each of ``k`` k-means clusters of ``pool`` (rows in rank order, ``vectors`` theirs),
    topped up in rank order where clusters come out empty; ordered by rank."""
    from sklearn.cluster import KMeans

    if len(pool) <= k:
        return [int(i) for i in pool]
    labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(vectors)
    first: dict[int, int] = {}
    for position, cluster in enumerate(labels):  # pool is in rank order: the first seen is the most uncertain
        first.setdefault(int(cluster), position)
    chosen = sorted(first.values())
    if len(chosen) < k:
        taken = set(chosen)
        chosen += [p for p in range(len(pool)) if p not in taken][: k - len(chosen)]
        chosen.sort()
    return [int(pool[p]) for p in chosen]
