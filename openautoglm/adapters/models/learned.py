"""Models learned by ``TaskPipeline.fit``, behind one face (:class:`LearnedModel`): ``predict`` rows like a
backend, and ``save`` a model folder where the kind can be saved.

- Classification: logistic heads on char TF-IDF and on the embeddings of the pipeline's offline encoders (through
  the call cache), multiplied, see :class:`openautoglm.core.nlp.learn.FewLabelClassifier` (:class:`LearnedClassifier`).
- NER: a CRF over character features and LAC's tags, :class:`openautoglm.adapters.models.crf.CrfNer`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models import ModelSpec, load_backend
from openautoglm.adapters.models.base import BatchStats
from openautoglm.adapters.models.embedding import EmbeddingBackend, Encoder
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.learn import FewLabelClassifier
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig


@runtime_checkable
class LearnedModel(Protocol):
    """What ``TaskPipeline`` needs of a fitted model: results for rows, and a model folder."""

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        """One result per row, in order."""
        ...

    def save(self, folder: str | Path) -> Path:
        """Write a folder that ``model="local:<folder>"`` loads; return its path."""
        ...


def feature_encoders(spec: ModelSpec) -> list[Encoder]:
    """The encoders whose embeddings are a learned head's views for ``spec``'s model (none for API and chat
    models: TF-IDF alone)."""
    backend = load_backend(spec)
    return backend.feature_encoders() if isinstance(backend, EmbeddingBackend) else []


def embed(encoders: Sequence[Encoder], texts: Sequence[str], cache: CallCache, stats: BatchStats) -> list[np.ndarray]:
    """The embedding views of ``texts``, one per encoder."""
    return [encoder.encode(list(texts), cache, stats) for encoder in encoders]


def fit_classifier(
    spec: ModelSpec,
    texts: Sequence[str],
    labels: Sequence[str],
    unlabelled: Sequence[str],
    cache: CallCache,
    *,
    C: float | None = None,
) -> tuple[FewLabelClassifier, BatchStats]:
    """Fit the heads on the labelled rows; the unlabelled rows give the TF-IDF vocabulary and IDF."""
    stats = BatchStats()
    model = FewLabelClassifier() if C is None else FewLabelClassifier(C=C)
    model.fit(texts, labels, embed(feature_encoders(spec), texts, cache, stats), unlabelled)
    return model, stats


def predict_learned(
    spec: ModelSpec, model: FewLabelClassifier, rows: Sequence[Row], cache: CallCache
) -> tuple[list[RowResult], BatchStats]:
    """One result per row from a fitted head."""
    stats = BatchStats()
    started = time.perf_counter()
    texts = [r.text for r in rows]
    probs = model.predict_proba(texts, embed(feature_encoders(spec), texts, cache, stats))
    per_row = (time.perf_counter() - started) * 1000 / max(1, len(rows))
    results = []
    for r, p in zip(rows, probs, strict=True):
        best = int(p.argmax())
        scores = {label: round(float(v), 4) for label, v in zip(model.classes_, p, strict=True)}
        results.append(
            RowResult(
                row_id=r.row_id,
                prediction=model.classes_[best],
                score=float(p[best]),
                raw=json.dumps({"method": "learned", "scores": scores}, ensure_ascii=False),
                latency_ms=per_row,
            )
        )
    return results, stats


@dataclass
class LearnedClassifier:
    """A fitted :class:`FewLabelClassifier` with the model whose encoders give its embedding views."""

    spec: ModelSpec
    head: FewLabelClassifier

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        return predict_learned(self.spec, self.head, rows, cache)

    def save(self, folder: str | Path) -> Path:
        raise ConfigurationError(
            "A fitted classification head cannot be saved as a model folder yet.",
            hint="keep the pipeline object, or refit from the labelled rows",
        )
