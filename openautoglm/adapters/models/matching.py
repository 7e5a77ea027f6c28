"""Semantic matching by an ensemble of the embedded encoders (``local-ensemble``; also ``local-auto``'s matching).

Per pair: the cosine of e5's embeddings and the cosine of USE's (and any lexical view a combiner names, e.g. the
char 1-2-gram Dice overlap ``char``), combined by :class:`openautoglm.core.nlp.matching.MatchCombiner`: z-normalised
per view with constants fitted on STS-B zh train, a non-negative weighted sum through a logistic, so the score is in
(0, 1) and order-preserving in every view. On STS-B zh dev (1,500 pairs): USE 0.795, e5 0.827, the ensemble 0.829
Spearman (``bench/nlp.py``, section ``stsb_zh_dev``); it costs e5's speed (~20-40 texts/s on one core).
Every embedding goes through the call cache; each distinct text of a batch is encoded once per encoder.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models.base import BatchStats, ModelBackend
from openautoglm.adapters.models.embedding import Encoder, _raw, encoding_seconds
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.matching import DEFAULT_COMBINER, MatchCombiner, char_dice
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig

#: Views computed from the texts themselves, not from an encoder.
LEXICAL_VIEWS = {"char": char_dice}


def pair_views(
    encoders: Mapping[str, Encoder], rows: Sequence[Row], cache: CallCache, stats: BatchStats
) -> dict[str, np.ndarray]:
    """Raw similarity per pair and view: each encoder's cosine (each distinct text encoded once) and the
    lexical views of :data:`LEXICAL_VIEWS`."""
    left = [r.text for r in rows]
    right = [r.text_pair or "" for r in rows]
    distinct = list(dict.fromkeys(left + right))
    index = {t: i for i, t in enumerate(distinct)}
    li = np.array([index[t] for t in left], dtype=np.int64)
    ri = np.array([index[t] for t in right], dtype=np.int64)
    views: dict[str, np.ndarray] = {}
    for name, encoder in encoders.items():
        vectors = encoder.encode(distinct, cache, stats)
        views[name] = np.sum(vectors[li] * vectors[ri], axis=1) if rows else np.zeros(0)
    for name, fn in LEXICAL_VIEWS.items():
        views[name] = np.array([fn(a, b) for a, b in zip(left, right, strict=True)], dtype=np.float64)
    return views


class EnsembleMatcher:
    """Scores pairs with a :class:`MatchCombiner` over encoder cosines and lexical views.

    Args:
        encoders: View name -> encoder, for every encoder view the combiner names.
        combiner: The fitted combination (default: the one fitted on STS-B zh train).
    """

    def __init__(self, encoders: Mapping[str, Encoder], combiner: MatchCombiner = DEFAULT_COMBINER) -> None:
        unknown = [v for v in combiner.views if v not in encoders and v not in LEXICAL_VIEWS]
        if unknown:
            raise ConfigurationError(
                f"The matching combiner names views {unknown} that have no encoder.",
                hint=f"give encoders for {unknown} or a combiner over {sorted(set(encoders) | set(LEXICAL_VIEWS))}",
            )
        self.encoders = {name: encoders[name] for name in combiner.views if name in encoders}
        self.combiner = combiner

    def cost(self, rows: Sequence[Row]) -> float | None:
        """Seconds of encoding for ``rows``: every encoder on every distinct text (``None`` before calibration)."""
        lengths = [len(t) for t in dict.fromkeys([r.text for r in rows] + [r.text_pair or "" for r in rows])]
        seconds = [encoding_seconds(encoder, lengths) for encoder in self.encoders.values()]
        return None if None in seconds else sum(s for s in seconds if s is not None)

    def match(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache, stats: BatchStats) -> list[RowResult]:
        views = pair_views(self.encoders, rows, cache, stats)
        scores = self.combiner.score(views)
        no, yes = config.match_labels
        return [
            RowResult(
                row_id=r.row_id,
                prediction=yes if float(s) >= config.threshold else no,
                score=float(s),
                raw=_raw({name: round(float(views[name][i]), 4) for name in self.combiner.views}),
            )
            for i, (r, s) in enumerate(zip(rows, scores, strict=True))
        ]


class EnsembleMatchBackend(ModelBackend):
    """``local-ensemble``: semantic matching only (classification: ``local-auto``)."""

    tasks = frozenset({"semantic_matching"})
    kind = "embedding-ensemble"

    def __init__(self, model: str, matcher: EnsembleMatcher) -> None:
        super().__init__(model)
        self.matcher = matcher

    def calibrate(self, config: TaskConfig, repeats: int = 2) -> None:
        for encoder in self.matcher.encoders.values():
            if encoder.seconds_per_char is None:
                encoder.calibrate(repeats=repeats)

    def cost(self, config: TaskConfig, rows: Sequence[Row]) -> float | None:
        return self.matcher.cost(rows)

    def timings(self) -> dict[str, float]:
        return {e.name: e.seconds_per_char for e in self.matcher.encoders.values() if e.seconds_per_char is not None}

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        if config.task_type not in self.tasks:
            raise ConfigurationError(
                f"Model '{self.model}' cannot do {config.task_type}.",
                hint="it matches pairs (semantic_matching); for classification use local-auto, local-e5 or local-use",
            )
        stats = BatchStats()
        started = time.perf_counter()
        results = self.matcher.match(config, rows, cache, stats)
        per_row = (time.perf_counter() - started) * 1000 / max(1, len(rows)) if stats.calls else 0.0
        return [replace(r, latency_ms=per_row) for r in results], stats
