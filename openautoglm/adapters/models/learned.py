"""Models learned by ``TaskPipeline.fit``, behind one face (:class:`LearnedModel`): ``predict`` rows like a
backend, and ``save`` a model folder where the kind can be saved.

- Classification: logistic heads on char TF-IDF and on the embeddings of the pipeline's offline encoders (through
  the call cache), multiplied, see :class:`openautoglm.core.nlp.learn.FewLabelClassifier` (:class:`LearnedClassifier`).
- NER: a CRF over character features and LAC's tags, :class:`openautoglm.adapters.models.crf.CrfNer`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models import BACKENDS, ModelSpec, load_backend
from openautoglm.adapters.models.base import BatchStats, ModelBackend, label_results
from openautoglm.adapters.models.embedding import EmbeddingBackend, Encoder
from openautoglm.adapters.models.folders import MANIFEST
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.model_names import model_scheme
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
    if spec.remote:
        return []
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
    spec: ModelSpec,
    model: FewLabelClassifier,
    rows: Sequence[Row],
    cache: CallCache,
    wanted: Sequence[str] | None = None,
    name: str | None = None,
) -> tuple[list[RowResult], BatchStats]:
    """One result per row from a fitted head (answering among ``wanted`` of its labels, default all); only the
    embeddings the head uses are computed."""
    stats = BatchStats()
    started = time.perf_counter()
    texts = [r.text for r in rows]
    needed = set(model.embedding_views)
    encoders = feature_encoders(spec) if needed else []
    views = [encoder.encode(texts, cache, stats) if i in needed else None for i, encoder in enumerate(encoders)]
    probs = model.predict_proba(texts, views)
    seconds = time.perf_counter() - started
    results = label_results(
        name or spec.model, rows, model.classes_, probs, wanted=wanted, method="learned", seconds=seconds
    )
    return results, stats


#: The folder kind of a saved classifier, and its file of fitted parts.
FOLDER_KIND, PARTS_FILE = "learned-classifier", "heads.skops"


@dataclass
class LearnedClassifier:
    """A fitted :class:`FewLabelClassifier` with the model whose encoders give its embedding views."""

    spec: ModelSpec
    head: FewLabelClassifier
    #: The model string it answers as (default: the encoder model's).
    name: str | None = None

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        return predict_learned(self.spec, self.head, rows, cache, wanted=config.labels, name=self.name)

    def save(self, folder: str | Path) -> Path:
        """Write the heads as a model folder (created if needed): the manifest (labels, views, the encoder model
        and the encoders' versions) and the fitted vectorizer and heads in the skops format (no pickle)."""
        import skops.io

        path = Path(folder).expanduser()
        path.mkdir(parents=True, exist_ok=True)  # its two files are replaced; nothing else in it is touched
        vectorizer, heads = self.head.parts
        needs_encoders = bool(self.head.embedding_views)
        skops.io.dump({"vectorizer": vectorizer, "heads": [h for _, h in heads]}, path / PARTS_FILE)
        manifest = {
            "kind": FOLDER_KIND,
            "format": "skops",
            "labels": self.head.classes_,
            "views": [v for v, _ in heads],
            "view_names": list(self.head.views_),
            "C": self.head.C_,
            "encoder_model": self.spec.model if needs_encoders else None,
            "encoders": [e.name for e in feature_encoders(self.spec)] if needs_encoders else [],
        }
        (path / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        return path


class LearnedBackend(ModelBackend):
    """A saved classifier loaded from its folder: text classification among its labels (or a subset)."""

    tasks = frozenset({"text_classification"})
    kind = "learned"

    def __init__(self, model: str, learned: LearnedClassifier) -> None:
        super().__init__(model)
        self.learned = learned
        self.metadata = {"views": list(learned.head.views_), "C": learned.head.C_}

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        if config.task_type not in self.tasks:
            raise ConfigurationError(f"{self.model} is a learned classifier: it cannot do {config.task_type}.")
        return self.learned.predict(config, rows, cache)


def load_learned_folder(spec: ModelSpec, path: Path, manifest: Mapping[str, Any]) -> ModelBackend:
    """The ``learned-classifier`` folder kind's loader.

    Raises:
        ConfigurationError: A part that is missing or not of a known safe type, or encoders that are not the ones
            the heads were fitted on.
    """
    import skops.io

    file = path / PARTS_FILE
    if manifest.get("format") != "skops" or not file.is_file():
        raise ConfigurationError(f"{spec.model}: a learned classifier without its {PARTS_FILE}.", hint="save it again")
    untrusted = skops.io.get_untrusted_types(file=file)  # skops trusts scikit-learn's own types, nothing else
    if untrusted:
        raise ConfigurationError(
            f"{spec.model}: {PARTS_FILE} holds types a learned classifier does not: {sorted(untrusted)}.",
            hint="load only folders written by TaskPipeline.save",
        )
    parts = skops.io.load(file)
    views = [int(v) for v in manifest.get("views") or []]
    heads = list(parts.get("heads") or []) if isinstance(parts, dict) else []
    vectorizer = parts.get("vectorizer") if isinstance(parts, dict) else None
    if not isinstance(vectorizer, TfidfVectorizer) or not all(isinstance(h, LogisticRegression) for h in heads):
        raise ConfigurationError(
            f"{spec.model}: {PARTS_FILE} is not a TF-IDF vectorizer with logistic heads.",
            hint="load only folders written by TaskPipeline.save",
        )
    if len(views) != len(heads):
        raise ConfigurationError(f"{spec.model}: the manifest names {len(views)} views for {len(heads)} heads.")
    head = FewLabelClassifier.from_parts(
        [str(label) for label in manifest.get("labels") or []],
        vectorizer,
        list(zip(views, heads, strict=True)),
        float(manifest.get("C") or 1.0),
    )
    encoder_model = manifest.get("encoder_model")
    # Heads on TF-IDF alone need no encoder: the spec is then never loaded.
    base = ModelSpec(model=str(encoder_model or "local-use"), threads=spec.threads)
    if encoder_model:
        _check_encoders(spec.model, base, [str(name) for name in manifest.get("encoders") or []])
    return LearnedBackend(spec.model, LearnedClassifier(base, head, name=spec.model))


def _check_encoders(model: str, base: ModelSpec, expected: list[str]) -> None:
    """The encoder model must be an offline encoder backend whose encoders are the ones the heads learned on."""
    if model_scheme(base.model) is not None or not BACKENDS.resolve(base.backend).local_batches:
        raise ConfigurationError(f"{model}: its encoder model '{base.model}' is not an offline encoder.")
    found = [encoder.name for encoder in feature_encoders(base)]
    if found != expected:
        raise ConfigurationError(
            f"{model}: fitted on the encoders {expected}, but {base.model} gives {found} here.",
            hint="install the encoder versions it was fitted with, or fit it again",
        )
