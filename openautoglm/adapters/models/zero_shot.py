"""Calibrated zero-shot classification with the embedded encoders (``local-auto``, the offline default).

For a batch of rows and bare label names (the seed's ``正面/负面/中性``):

1. **Label descriptions, chosen by the encoder** (:mod:`openautoglm.core.nlp.label_expansion`): each label is
   framed in generic patterns; when e5 maps every label to a different descriptor group (positive / negative /
   neutral registers), the group's phrases describe the label. Explicit ``verbalizers`` are used as given.
2. **Scores**: cosine of each row to the label prototypes, as probabilities (softmax at the encoder's
   temperature). The strong encoder (e5, ~40 texts/s on one core) scores a seeded sample of the batch
   (``sample_fraction``, 6%); the fast one (USE, ~800 texts/s) scores every other row.
3. **Student** (:func:`openautoglm.core.nlp.learn.self_train`): the most confident half of each label's rows
   (e5's scores on the sample, USE's on the rest) train a class-balanced logistic head on char 1-3-gram TF-IDF,
   which relabels every row of the batch.
4. **Prior** (:func:`openautoglm.core.nlp.calibration.em_prior`): the student's posteriors (made under a uniform
   prior, being class-balanced) are adjusted to the label prior of the batch, re-estimated by EM (Saerens et al.
   2002), so an unbalanced batch is not pulled towards balance.

Matching (``semantic_matching``) is :class:`openautoglm.adapters.models.matching.EnsembleMatcher` over both
encoders (what ``local-ensemble`` does).

Batches smaller than ``min_student_rows`` skip 3-4 (too few rows to learn from): every row is scored by e5.
Transductive steps read only the rows of one batch, so results depend on the batch: the SDK and the flow send
local encoders batches of 1024 rows.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models.base import BatchStats
from openautoglm.adapters.models.embedding import EmbeddingBackend, Encoder, _raw, encoding_seconds
from openautoglm.adapters.models.matching import EnsembleMatcher
from openautoglm.core.nlp import calibration, label_expansion, learn
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig

_PHRASE_MEMO_SIZE = 256  # distinct phrase lists kept (label sets x encoders); cleared when full


class ZeroShotBackend(EmbeddingBackend):
    """Zero-shot classification that expands label names, self-trains a student on the batch and corrects the
    label prior; matching by :class:`EnsembleMatcher` over both encoders; few-shot prototypes as
    :class:`EmbeddingBackend` (on the fast encoder).

    Args:
        model: The model string it was built for.
        fast: Encoder that embeds every row (and the student's embedding view).
        strong: Encoder that chooses label descriptions and scores the sampled rows.
        sample_fraction: Share of a batch's rows the strong encoder scores (at least ``min_sample_rows``): e5 is
            ~20x slower than USE, so 6% keeps the whole at about 300 texts/s on one core.
        min_sample_rows: Fewest rows the strong encoder scores in a batch that trains a student.
        min_student_rows: Smallest batch that trains a student.
        student_fraction: Share of each label's scored rows (the most confident) that train the student.
        fast_temperature, strong_temperature: Softmax temperatures of the two encoders' cosines.
        seed: Seed of the row sample.
    """

    def __init__(
        self,
        model: str,
        fast: Encoder,
        strong: Encoder,
        *,
        sample_fraction: float = 0.06,
        min_sample_rows: int = 64,
        min_student_rows: int = 200,
        student_fraction: float = 0.5,
        fast_temperature: float = 0.02,
        strong_temperature: float = 0.01,
        seed: int = 0,
    ) -> None:
        super().__init__(model, fast)
        self.strong = strong
        self.sample_fraction = sample_fraction
        self.min_sample_rows = min_sample_rows
        self.min_student_rows = min_student_rows
        self.student_fraction = student_fraction
        self.fast_temperature = fast_temperature
        self.strong_temperature = strong_temperature
        self.seed = seed
        self._lock = threading.Lock()
        self._phrase_memo: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
        self._matcher = EnsembleMatcher({"e5": strong, "use": fast})

    def _match(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache, stats: BatchStats) -> list[RowResult]:
        return self._matcher.match(config, rows, cache, stats)

    def feature_encoders(self) -> list[Encoder]:
        """Both encoders: which views help depends on the data (e5 on waimai_10k sentiment, e5 and USE on
        online_shopping_9_cats topics), so :func:`openautoglm.core.nlp.learn.choose_views` picks on the labelled
        rows."""
        return [self.strong, self.encoder]

    def cost_encoders(self) -> list[Encoder]:
        return [self.strong, self.encoder]

    def prepare(self, config: TaskConfig) -> None:
        """Encode ``config``'s label descriptions and the descriptor groups with the strong encoder (kept in this
        instance's memo), so no request of fewer than ``min_student_rows`` rows pays for them. The fast encoder is
        left alone: only a student's batch uses it (and loading it costs ~110 MB per copy)."""
        if config.task_type != "text_classification" or not config.labels:
            return
        cache, stats = CallCache(Path("prepare-cache-off.sqlite"), "off"), BatchStats()
        self._prototypes(self.strong, config, self.assignment(config, cache, stats), cache, stats)

    # --- what a call costs --------------------------------------------------------------------------------
    def cost(self, config: TaskConfig, rows: Sequence[Row]) -> float | None:
        """Seconds of encoding for ``rows``, as :meth:`_classify` would spend them: the strong encoder on the
        sampled rows (all of them in a batch too small for the student), the fast one on every row when a student
        is trained, both on the few-shot examples, and on label descriptions not yet encoded in this process.
        Matching: both encoders on every distinct text."""
        if config.task_type != "text_classification":
            return self._matcher.cost(rows)
        n = len(rows)
        student = n >= self.min_student_rows
        shots = [len(e.text) for e in config.few_shot]
        strong = encoding_seconds(
            self.strong, [len(rows[i].text) for i in self._sample(n)] + shots + self._new_phrases(self.strong, config)
        )
        fast = encoding_seconds(
            self.encoder, [len(r.text) for r in rows] + shots + self._new_phrases(self.encoder, config)
        )
        if strong is None or fast is None:
            return None
        return strong + fast if student else strong

    def _sample(self, n: int) -> list[int]:
        """The rows the strong encoder scores in a batch of ``n`` (all of them when no student is trained)."""
        if n < self.min_student_rows:
            return list(range(n))
        size = min(n, max(self.min_sample_rows, math.ceil(self.sample_fraction * n)))
        return sorted(random.Random(self.seed).sample(range(n), size))

    def _new_phrases(self, encoder: Encoder, config: TaskConfig) -> list[int]:
        """Lengths of the label phrases (framed names or explicit verbalisers; the descriptor groups when they may
        be used) ``encoder`` has not encoded yet in this process (:meth:`_phrases`)."""
        explicit = dict(config.verbalizers or ())
        lists = [
            [explicit[label]] if label in explicit else label_expansion.framed(label) for label in config.labels or ()
        ]
        if not config.verbalizers:
            lists += [list(g) for g in label_expansion.DESCRIPTOR_GROUPS.values()]
        return [len(t) for texts in lists if (encoder.name, tuple(texts)) not in self._phrase_memo for t in texts]

    # --- label descriptions -------------------------------------------------------------------------------
    def _phrases(self, encoder: Encoder, texts: list[str], cache: CallCache, stats: BatchStats) -> np.ndarray:
        """Embeddings of fixed phrases (framed label names, descriptor groups): the same for every batch, so
        encoded once per encoder in this process, whatever the cache mode. With the cache off they were encoded
        again for every batch, twice: ~2.8 s of e5 per 1,024 rows, more than the rows' own e5 sample."""
        key = (encoder.name, tuple(texts))
        found = self._phrase_memo.get(key)
        if found is None:
            if len(self._phrase_memo) >= _PHRASE_MEMO_SIZE:
                self._phrase_memo.clear()
            found = self._phrase_memo[key] = encoder.encode(texts, cache, stats)
        return found

    def _names(self, encoder: Encoder, config: TaskConfig, cache: CallCache, stats: BatchStats) -> np.ndarray:
        """Per label, the mean embedding of its framed name (or of its explicit verbaliser as given)."""
        labels = list(config.labels or ())
        explicit = dict(config.verbalizers or ())
        rows = []
        for label in labels:
            texts = [explicit[label]] if label in explicit else label_expansion.framed(label)
            rows.append(label_expansion.unit_rows(self._phrases(encoder, list(texts), cache, stats)).mean(axis=0))
        return np.stack(rows)

    def _groups(self, encoder: Encoder, cache: CallCache, stats: BatchStats) -> np.ndarray:
        groups = label_expansion.DESCRIPTOR_GROUPS.values()
        return np.stack([self._phrases(encoder, list(g), cache, stats).mean(axis=0) for g in groups])

    def _prototypes(
        self, encoder: Encoder, config: TaskConfig, assignment: list[int] | None, cache: CallCache, stats: BatchStats
    ) -> np.ndarray:
        names = self._names(encoder, config, cache, stats)
        groups = self._groups(encoder, cache, stats) if assignment is not None else None
        centroids: list[np.ndarray | None] | None = None
        if config.few_shot:
            examples = encoder.encode([e.text for e in config.few_shot], cache, stats)
            centroids = []
            for label in config.labels or ():
                members = [examples[j] for j, e in enumerate(config.few_shot) if e.label == label]
                centroids.append(np.mean(members, axis=0) if members else None)
        return label_expansion.prototypes(names, groups, assignment, centroids)

    def assignment(self, config: TaskConfig, cache: CallCache, stats: BatchStats) -> list[int] | None:
        """Descriptor group per label (chosen in the strong encoder's space), or ``None``; never with explicit
        verbalisers (the user chose the descriptions)."""
        if config.verbalizers:
            return None
        names = self._names(self.strong, config, cache, stats)
        return label_expansion.assign_groups(names, self._groups(self.strong, cache, stats))

    # --- classification -----------------------------------------------------------------------------------
    def _classify(
        self, config: TaskConfig, rows: Sequence[Row], cache: CallCache, stats: BatchStats
    ) -> list[RowResult]:
        labels = list(config.labels or ())
        n = len(rows)
        if n == 0:
            return []
        texts = [r.text for r in rows]
        assignment = self.assignment(config, cache, stats)
        student = n >= self.min_student_rows
        sample = self._sample(n)
        strong_protos = self._prototypes(self.strong, config, assignment, cache, stats)
        strong_vectors = self.strong.encode([texts[i] for i in sample], cache, stats)
        strong_probs = calibration.softmax(strong_vectors @ strong_protos.T, self.strong_temperature)
        if not student:
            probs = strong_probs
            method = "zero-shot"
        else:
            fast_vectors = self.encoder.encode(texts, cache, stats)
            fast_protos = self._prototypes(self.encoder, config, assignment, cache, stats)
            probs = calibration.softmax(fast_vectors @ fast_protos.T, self.fast_temperature)
            probs[sample] = strong_probs
            # The confident rows of the whole batch (e5's scores where it scored, USE's elsewhere) train the
            # student; measured on a dev slice of waimai_10k train rows, this beat training on the e5 sample alone,
            # whose few rows gave posteriors too sharp for the prior correction.
            probs = learn.self_train(texts, probs, fraction=self.student_fraction, min_rows=self.min_student_rows)
            probs = calibration.em_prior(probs).probs
            method = "student+prior"
        best = probs.argmax(axis=1)
        return [
            RowResult(
                row_id=r.row_id,
                prediction=labels[b],
                score=float(probs[i, b]),
                raw=_raw(
                    {
                        "method": method,
                        "scores": {label: round(float(p), 4) for label, p in zip(labels, probs[i], strict=True)},
                    }
                ),
            )
            for i, (r, b) in enumerate(zip(rows, best, strict=True))
        ]

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        if config.task_type != "text_classification":
            return super().predict(config, rows, cache)
        stats = BatchStats()
        started = time.perf_counter()
        with self._lock:  # both encoders serialise anyway; one batch at a time keeps the student's memory bounded
            results = self._classify(config, rows, cache, stats)
        per_row = (time.perf_counter() - started) * 1000 / max(1, len(rows)) if stats.calls else 0.0
        return [replace(r, latency_ms=per_row) for r in results], stats
