"""A student distilled online from a slow teacher, one request at a time: what a server learns from its traffic.

A served zero-shot teacher (e5 label prototypes, ~25 ms a text on one core here) cannot answer 200 requests a second
on two cores; a class-balanced logistic head on character 1-3-gram TF-IDF and a sentence embedding (the views of
:mod:`openautoglm.core.nlp.learn`) answers in well under a millisecond. :class:`OnlineStudent` keeps the rows the
teacher labelled (a bounded pool, oldest dropped first) and, once it holds ``warmup_rows`` of them, a head fitted on
them; from then on the teacher labels only a seeded ``sample`` of the rows (so the student keeps learning the
traffic's domain) and the head answers the rest, refitted each time ``refit_rows`` more teacher labels arrived.

No gold label is read: the student learns the teacher's answers on the texts it is sent (the same transductive
self-training as ``local-auto``'s batch student, spread over requests). Settings chosen on a development slice
(2,000 waimai_10k *train* rows streamed in order, 2026-12-07; the test split was not used): warm-up 200 rows, sample
3%, refit every 200 teacher labels, min_df 1, C 4 — 81.8% over the stream (83.0% after its first 1,000 rows, the
teacher answering 3.8% of them) vs the teacher's 80.0% per row; a 5% or 10% sample and a confidence gate that sent
the student's unsure rows back to the teacher (threshold 0.6: 15% of the rows to the teacher) were no better.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from openautoglm.core.nlp.learn import char_vectorizer, design, fit_head

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Head:
    """A fitted student: its vectoriser and head (replaced whole on refit, so readers need no lock)."""

    vectorizer: object
    head: object
    rows: int


class OnlineStudent:
    """A head over TF-IDF and embedding views, learnt from a teacher's labels as rows arrive. Thread-safe.

    Args:
        labels: The label names, in the order of the teacher's and the student's probability columns.
        warmup_rows: Teacher labels before the first fit (until then the teacher answers every row).
        sample: Share of the rows the teacher labels once a head exists (seeded).
        refit_rows: New teacher labels that trigger a refit.
        pool_rows: Teacher-labelled rows kept at most (the oldest dropped): bounds memory and fit time.
        C: Inverse regularisation of the logistic head.
        seed: Seed of the sample.
    """

    def __init__(
        self,
        labels: Sequence[str],
        *,
        warmup_rows: int = 200,
        sample: float = 0.03,
        refit_rows: int = 200,
        pool_rows: int = 4000,
        C: float = 4.0,
        seed: int = 0,
    ) -> None:
        if len(labels) < 2:
            raise ValueError("an online student needs at least two labels")
        self.labels = tuple(labels)
        self.warmup_rows = warmup_rows
        self.sample = sample
        self.refit_rows = refit_rows
        self.C = C
        self._pool: deque[tuple[str, FloatArray, int]] = deque(maxlen=pool_rows)
        self._fresh = 0  # teacher labels since the last fit
        self._fitting = False
        self._head: _Head | None = None
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        """Whether a head has been fitted (the student answers)."""
        return self._head is not None

    def to_teacher(self, rows: int) -> list[bool]:
        """For each of ``rows`` new rows, whether the teacher should label it (every row until a head exists)."""
        if self._head is None:
            return [True] * rows
        with self._lock:
            return [self._random.random() < self.sample for _ in range(rows)]

    def learn(self, texts: Sequence[str], embeddings: npt.ArrayLike, probs: npt.ArrayLike) -> bool:
        """Keep the teacher's answers (``probs``: rows x labels) for ``texts``; True when a refit is due (the caller
        then runs :meth:`fit`, on this thread or another; one fit at a time)."""
        vectors = np.asarray(embeddings, dtype=np.float64)
        answers = np.asarray(probs).argmax(axis=1)
        with self._lock:
            for text, vector, answer in zip(texts, vectors, answers, strict=True):
                self._pool.append((text, vector, int(answer)))
            self._fresh += len(texts)
            due = self._fresh >= (self.warmup_rows if self._head is None else self.refit_rows)
            if due and not self._fitting and len(self._pool) >= self.warmup_rows:
                self._fitting = True
                return True
        return False

    def fit(self) -> None:
        """Fit a head on the pool and put it in place (readers keep the old one until then)."""
        with self._lock:
            pool = list(self._pool)
            self._fresh = 0
        try:
            texts = [t for t, _, _ in pool]
            answers = np.array([a for _, _, a in pool], dtype=np.int64)
            if len(set(answers.tolist())) < 2:
                return  # one label only: nothing to tell apart yet; the teacher keeps answering
            vectorizer = char_vectorizer(min_df=1).fit(texts)
            x = design(vectorizer.transform(texts), [np.stack([v for _, v, _ in pool])])
            head = fit_head(x, answers, len(self.labels), self.C)
            self._head = _Head(vectorizer, head, len(pool))
        finally:
            with self._lock:
                self._fitting = False

    def predict(self, texts: Sequence[str], embeddings: npt.ArrayLike) -> FloatArray | None:
        """``(rows, labels)`` probabilities of the student, or None before its first fit."""
        fitted = self._head
        if fitted is None:
            return None
        x = design(fitted.vectorizer.transform(list(texts)), [np.asarray(embeddings, dtype=np.float64)])  # type: ignore[attr-defined]
        probs = np.zeros((len(texts), len(self.labels)))
        probs[:, fitted.head.classes_] = fitted.head.predict_proba(x)  # type: ignore[attr-defined]
        return probs
