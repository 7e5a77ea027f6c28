"""NER that learns: a linear-chain CRF (sklearn-crfsuite, L-BFGS with elastic-net penalty ``c1``/``c2``) over
character n-gram features plus Baidu LAC's word tags (:mod:`openautoglm.core.nlp.tagging`).

``TaskPipeline("ner", ...).fit(sentences)`` trains a :class:`CrfNer`; ``save(folder)`` writes a model folder::

    folder/
      openautoglm-model.json   {"kind": "crf-ner", "entity_types": [...], "labels": [...], "feature_version": 1, ...}
      model.crfsuite           the crfsuite model

and ``TaskPipeline("ner", model="local:folder")`` loads it back (:class:`CrfBackend`, through the folder-kind
registry in :mod:`openautoglm.adapters.models.folders`). LAC is the process's ``local-lac`` backend (one loaded
copy), its tags go through the call cache.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models.base import BatchStats, ModelBackend
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.tagging import (
    FEATURE_VERSION,
    LabelledSentence,
    Tokens,
    char_features,
    entities_from_tags,
    entity_types,
)
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig

KIND = "crf-ner"
MODEL_FILE = "model.crfsuite"


def lac_pairs(texts: Sequence[str], cache: CallCache, stats: BatchStats) -> list[list[tuple[str, str]]]:
    """LAC's (word, tag) pairs for each text, from the process's one ``local-lac`` backend (through the cache)."""
    from openautoglm.adapters.models import ModelSpec, load_backend
    from openautoglm.adapters.models.lac import LacBackend

    lac = load_backend(ModelSpec(model="local-lac"))
    if not isinstance(lac, LacBackend):  # pragma: no cover - the registry maps local-lac to LacBackend
        raise TypeError(f"local-lac resolved to {type(lac).__name__}")
    return [lac.tag(text, cache, stats) for text in texts]


@dataclass
class CrfNer:
    """A CRF tagging characters with BIO labels.

    Defaults chosen on a validation split of MSRA (5,000 training sentences, never the test split; see
    ``bench/nlp.py``, section ``ner_msra_tuning``).

    Args:
        c1: L1 penalty (sparsity). c2: L2 penalty.
        max_iterations: L-BFGS iterations.
        use_lac: Add LAC's word tags as features (otherwise characters only).
        window: Characters either side that are features.
        min_freq: Features seen fewer times than this in training are dropped.
    """

    c1: float = 0.02
    c2: float = 0.02
    max_iterations: int = 150
    use_lac: bool = True
    window: int = 2
    min_freq: int = 1
    entity_types: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    feature_version: int = FEATURE_VERSION
    train_sentences: int = 0
    train_seconds: float = 0.0
    feature_seconds: float = 0.0
    _crf: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _model_copy: Any = field(default=None, repr=False)  # the loaded model file's private copy (see load)

    # -- features -------------------------------------------------------------------------------------------------

    def features(self, texts: Sequence[str], cache: CallCache, stats: BatchStats) -> list[Tokens]:
        """Per text, the features of each character (LAC is asked when :attr:`use_lac`)."""
        pairs: Sequence[Sequence[tuple[str, str]] | None] = (
            lac_pairs(texts, cache, stats) if self.use_lac else [None] * len(texts)
        )
        return [char_features(t, p, window=self.window) for t, p in zip(texts, pairs, strict=True)]

    # -- training ---------------------------------------------------------------------------------------------------

    def fit(self, sentences: Sequence[LabelledSentence], cache: CallCache) -> CrfNer:
        """Train on labelled sentences (see :func:`openautoglm.core.nlp.tagging.labelled_sentences`)."""
        import sklearn_crfsuite

        started = time.perf_counter()
        x = self.features([s.text for s in sentences], cache, BatchStats())
        y = [s.bio for s in sentences]
        self.feature_seconds = round(time.perf_counter() - started, 2)
        crf = sklearn_crfsuite.CRF(
            algorithm="lbfgs",
            c1=self.c1,
            c2=self.c2,
            max_iterations=self.max_iterations,
            min_freq=self.min_freq,
            all_possible_transitions=True,
        )
        crf.fit(x, y)
        self._crf = crf
        self.entity_types = entity_types(sentences)
        self.labels = tuple(sorted(crf.classes_))
        self.train_sentences = len(sentences)
        self.train_seconds = round(time.perf_counter() - started, 2)
        return self

    # -- prediction -------------------------------------------------------------------------------------------------

    def tag(self, features: Sequence[Tokens]) -> list[list[str]]:
        """BIO tags per character (crfsuite's tagger is not thread-safe: one sentence at a time per model)."""
        if self._crf is None:
            raise ConfigurationError("The CRF is not fitted.", hint="call fit(labelled_sentences) first")
        with self._lock:
            return [list(self._crf.predict_single(f)) if f else [] for f in features]

    def predict_rows(
        self, rows: Sequence[Row], cache: CallCache, entity_types: Sequence[str] | None = None
    ) -> tuple[list[RowResult], BatchStats]:
        """One NER result per row (only ``entity_types`` when given)."""
        stats = BatchStats()
        started = time.perf_counter()
        texts = [r.text for r in rows]
        tags = self.tag(self.features(texts, cache, stats))
        per_row = (time.perf_counter() - started) * 1000 / max(1, len(rows))
        wanted = set(entity_types) if entity_types is not None else None
        results = []
        for row, row_tags in zip(rows, tags, strict=True):
            entities = entities_from_tags(row.text, row_tags)
            results.append(
                RowResult(
                    row_id=row.row_id,
                    prediction=tuple(e for e in entities if wanted is None or e.type in wanted),
                    raw=json.dumps({"method": KIND, "tags": row_tags}, ensure_ascii=False),
                    latency_ms=per_row,
                )
            )
        return results, stats

    def entities_json(self, texts: Sequence[str], cache: CallCache) -> list[str]:
        """One JSON list of entities (``text``, ``type``, ``start``, ``end``) per text: the MLflow face's output."""
        results, _ = self.predict_rows([Row(i, t) for i, t in enumerate(texts)], cache)
        out = []
        for r in results:
            entities = r.prediction if isinstance(r.prediction, tuple) else ()
            out.append(json.dumps([e.as_dict() for e in entities], ensure_ascii=False))
        return out

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        """One result per row, keeping the entity types ``config`` asks for (the learned-model face, see
        :class:`openautoglm.adapters.models.learned.LearnedModel`)."""
        if config.task_type != "ner":
            raise ConfigurationError(f"A CRF NER model cannot do {config.task_type}.")
        return self.predict_rows(rows, cache, config.entity_types)

    # -- persistence ------------------------------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "task_type": "ner",
            "entity_types": list(self.entity_types),
            "labels": list(self.labels),
            "feature_version": self.feature_version,
            "features": {"window": self.window, "use_lac": self.use_lac},
            "training": {
                "c1": self.c1,
                "c2": self.c2,
                "max_iterations": self.max_iterations,
                "min_freq": self.min_freq,
                "sentences": self.train_sentences,
                "seconds": self.train_seconds,
            },
            "model_file": MODEL_FILE,
        }

    def save(self, folder: str | Path) -> Path:
        """Write the model folder (created if needed); returns its path."""
        from openautoglm.adapters.models.folders import MANIFEST

        if self._crf is None:
            raise ConfigurationError("The CRF is not fitted, so there is nothing to save.")
        path = Path(folder).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._crf.modelfile.name, path / MODEL_FILE)
        (path / MANIFEST).write_text(json.dumps(self.manifest(), ensure_ascii=False, indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: Path, manifest: dict[str, Any]) -> CrfNer:
        """A model from a folder written by :meth:`save`."""
        import sklearn_crfsuite

        version = int(manifest.get("feature_version", -1))
        if version != FEATURE_VERSION:
            raise ConfigurationError(
                f"{folder}: the CRF was trained on feature version {version}; this release computes version "
                f"{FEATURE_VERSION}.",
                hint="train it again with TaskPipeline('ner', ...).fit(sentences).save(folder)",
            )
        model_file = folder / str(manifest.get("model_file", MODEL_FILE))
        if not model_file.is_file():
            raise ConfigurationError(f"{folder}: no {model_file.name} in the model folder.")
        features, training = manifest.get("features", {}), manifest.get("training", {})
        model = cls(
            c1=float(training.get("c1", 0.0)),
            c2=float(training.get("c2", 0.0)),
            max_iterations=int(training.get("max_iterations", 0)),
            min_freq=int(training.get("min_freq", 1)),
            use_lac=bool(features.get("use_lac", True)),
            window=int(features.get("window", 2)),
            entity_types=tuple(manifest.get("entity_types", ())),
            labels=tuple(manifest.get("labels", ())),
            train_sentences=int(training.get("sentences", 0)),
            train_seconds=float(training.get("seconds", 0.0)),
        )
        # crfsuite opens the file when it first tags: a private copy, alive as long as the model, so the folder may
        # be deleted (a registered model's download) or overwritten (a re-saved folder) meanwhile.
        copy = tempfile.NamedTemporaryFile(prefix="openautoglm-crf-", suffix=".crfsuite")  # noqa: SIM115
        copy.write(model_file.read_bytes())
        copy.flush()
        model._model_copy = copy
        model._crf = sklearn_crfsuite.CRF(model_filename=copy.name)
        return model


class CrfBackend(ModelBackend):
    """A saved :class:`CrfNer` folder as a model backend (``model="local:/path/to/folder"``)."""

    tasks = frozenset({"ner"})
    kind = KIND

    def __init__(self, model: str, crf: CrfNer, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(model)
        self.crf = crf
        self.metadata = dict(metadata or {})

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        return self.crf.predict(config, rows, cache)
