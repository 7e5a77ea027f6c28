"""How much annotators agree: Cohen's kappa for two, Fleiss' kappa for more, per project and per label.

Only items answered by two or more annotators count (adjudications are left out: a reviewer's answer settles a
dispute, it is not a rating). Which coefficient:

- exactly two annotators over those items: **Cohen's kappa** (Cohen 1960), ``(p_o - p_e) / (1 - p_e)`` with
  ``p_e`` from each annotator's own label frequencies (``sklearn.metrics.cohen_kappa_score``);
- three or more: **Fleiss' kappa** (Fleiss 1971), ``(P - P_e) / (1 - P_e)`` where ``P`` is the mean over items of
  the share of agreeing rater pairs, ``P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1))``, and ``P_e = sum_j p_j^2``
  with ``p_j`` the share of all ratings in category ``j``. Items may have different numbers of raters ``n_i``
  (annotators come and go); with a constant ``n`` this is Fleiss' formula exactly.

Per label the same coefficient is taken one-vs-rest (the label, or any other). Kappa is undefined (``None``) when
chance agreement is total (every rating in one category).

**NER** (a documented choice): every character of a doubly answered text is a unit rated with a BIO tag
(``B-TYPE``, ``I-TYPE``, ``O``; characters, because Chinese text has no spaces and the project's offsets count
characters), and kappa is computed over the units as above; per entity type one-vs-rest is "inside an entity of this
type, or not". The ``O`` tag dominates and kappa corrects for it, unlike raw agreement. Alongside it the mean pairwise
**span F1** (exact start, end and type; micro over items and annotator pairs) is reported, the measure entity
recognisers are scored with.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.types import Entity

Method = Literal["cohen", "fleiss", "none"]
#: Ratings: item -> annotator -> answer (a label, or a BIO tag per unit).
Ratings = Mapping[Any, Mapping[str, str]]


class Agreement(BaseModel):
    """Agreement between annotators over the items two or more of them answered.

    Attributes:
        method: ``cohen`` (two annotators), ``fleiss`` (more), ``none`` (no item answered twice).
        kappa: The coefficient over all labels; ``None`` when undefined or no item was answered twice.
        observed: The raw share of agreeing rater pairs (``None`` with no doubly answered item).
        items: Items answered by two or more annotators.
        annotators: Distinct annotators of those items.
        unit: What a rating is: an ``item`` (classification) or a ``character`` (NER, BIO tags).
        units: Ratings units (items, or characters of the doubly answered texts).
        per_label: Per label (entity type), the same coefficient one-vs-rest.
        span_f1: NER: the mean pairwise exact-span F1 between annotators.
    """

    model_config = ConfigDict(frozen=True)

    method: Method
    kappa: float | None
    observed: float | None
    items: int
    annotators: int
    unit: Literal["item", "character"] = "item"
    units: int = 0
    per_label: dict[str, float | None] = {}
    span_f1: float | None = None


def _defined(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen's kappa of two annotators' answers to the same units, in the same order (``None``: undefined).

    Raises:
        ConfigurationError: the two sequences differ in length or are empty.
    """
    if len(first) != len(second) or not first:
        raise ConfigurationError(
            f"Cohen's kappa needs two equally long, non-empty answer lists ({len(first)}, {len(second)})."
        )
    if len(set(first) | set(second)) == 1:
        return None  # chance agreement is total: (1 - 1) / (1 - 1)
    from sklearn.metrics import cohen_kappa_score

    return _defined(float(cohen_kappa_score(list(first), list(second))))


def fleiss_kappa(counts: npt.ArrayLike) -> float | None:
    """Fleiss' kappa from an ``(items, categories)`` matrix of how many raters put each item in each category;
    items may have different numbers of raters (two or more each). ``None``: undefined.

    Raises:
        ConfigurationError: not a 2-d matrix of non-negative counts, or an item with fewer than two ratings.
    """
    table = np.asarray(counts, dtype=np.float64)
    if table.ndim != 2 or table.size == 0 or (table < 0).any():
        raise ConfigurationError(f"Fleiss' kappa needs an (items, categories) matrix of counts, not {table.shape}.")
    raters = table.sum(axis=1)
    if (raters < 2).any():
        raise ConfigurationError("Fleiss' kappa needs two or more ratings of every item.")
    per_item = ((table**2).sum(axis=1) - raters) / (raters * (raters - 1))
    observed = float(per_item.mean())
    shares = table.sum(axis=0) / raters.sum()
    chance = float((shares**2).sum())
    if chance >= 1.0 - 1e-12:
        return None
    return _defined((observed - chance) / (1.0 - chance))


def observed_agreement(ratings: Ratings) -> float | None:
    """The share of agreeing rater pairs over items rated twice or more (``None`` when none is)."""
    agree = pairs = 0
    for answers in ratings.values():
        values = list(answers.values())
        for a, b in itertools.combinations(values, 2):
            pairs += 1
            agree += a == b
    return agree / pairs if pairs else None


def kappa(ratings: Ratings) -> tuple[Method, float | None]:
    """Cohen's kappa when exactly two annotators rated the units, Fleiss' otherwise; units rated once are left out."""
    rated = {unit: answers for unit, answers in ratings.items() if len(answers) >= 2}
    if not rated:
        return "none", None
    annotators = sorted({a for answers in rated.values() for a in answers})
    if len(annotators) == 2:
        first, second = annotators
        return "cohen", cohen_kappa([r[first] for r in rated.values()], [r[second] for r in rated.values()])
    categories = sorted({v for answers in rated.values() for v in answers.values()})
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(rated), len(categories)))
    for row, answers in enumerate(rated.values()):
        for value in answers.values():
            table[row, index[value]] += 1
    return "fleiss", fleiss_kappa(table)


def _one_vs_rest(ratings: Ratings, positive: str | tuple[str, ...]) -> Ratings:
    wanted = (positive,) if isinstance(positive, str) else positive
    return {u: {a: ("1" if v in wanted else "0") for a, v in answers.items()} for u, answers in ratings.items()}


def label_agreement(ratings: Ratings, labels: Sequence[str]) -> Agreement:
    """Agreement on a classification project: ``ratings`` maps item -> annotator -> label."""
    rated = {unit: answers for unit, answers in ratings.items() if len(answers) >= 2}
    method, overall = kappa(rated)
    return Agreement(
        method=method,
        kappa=overall,
        observed=observed_agreement(rated),
        items=len(rated),
        annotators=len({a for answers in rated.values() for a in answers}),
        unit="item",
        units=len(rated),
        per_label={label: kappa(_one_vs_rest(rated, label))[1] for label in labels} if rated else {},
    )


def bio_tags(length: int, entities: Sequence[Entity]) -> list[str]:
    """One BIO tag per character of a text of ``length`` characters (later spans overwrite earlier overlaps)."""
    tags = ["O"] * length
    for e in sorted(entities, key=lambda e: (e.start, e.end)):
        for position in range(max(e.start, 0), min(e.end, length)):
            tags[position] = ("B-" if position == e.start else "I-") + e.type
    return tags


def span_f1(ratings: Mapping[Any, Mapping[str, Sequence[Entity]]]) -> float | None:
    """Mean pairwise exact-span F1: ``2 * shared / (|A| + |B|)`` summed over items and annotator pairs (``None``
    when no pair; 1.0 when every pair found no entity)."""
    shared = total = pairs = 0
    for answers in ratings.values():
        for a, b in itertools.combinations(answers.values(), 2):
            pairs += 1
            spans_a = {(e.start, e.end, e.type) for e in a}
            spans_b = {(e.start, e.end, e.type) for e in b}
            shared += len(spans_a & spans_b)
            total += len(spans_a) + len(spans_b)
    if not pairs:
        return None
    return 1.0 if total == 0 else 2 * shared / total


def entity_agreement(
    ratings: Mapping[Any, Mapping[str, Sequence[Entity]]],
    lengths: Mapping[Any, int],
    entity_types: Sequence[str],
) -> Agreement:
    """Agreement on a NER project: ``ratings`` maps item -> annotator -> entities, ``lengths`` item -> characters.

    Every character of an item answered twice or more is one unit with a BIO tag per annotator (see the module's
    docstring).
    """
    rated = {item: answers for item, answers in ratings.items() if len(answers) >= 2}
    units: dict[Hashable, dict[str, str]] = {}
    for item, answers in rated.items():
        tagged = {annotator: bio_tags(lengths[item], entities) for annotator, entities in answers.items()}
        for position in range(lengths[item]):
            units[item, position] = {annotator: tags[position] for annotator, tags in tagged.items()}
    method, overall = kappa(units)
    return Agreement(
        method=method,
        kappa=overall,
        observed=observed_agreement(units),
        items=len(rated),
        annotators=len({a for answers in rated.values() for a in answers}),
        unit="character",
        units=len(units),
        per_label={t: kappa(_one_vs_rest(units, (f"B-{t}", f"I-{t}")))[1] for t in entity_types} if units else {},
        span_f1=span_f1(rated),
    )
