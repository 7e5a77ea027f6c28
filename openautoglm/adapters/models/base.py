"""The backend contract, and what generative backends share: retries with backoff, an adaptive
concurrency limit, the call cache, strict parsing with one repair round.
"""

from __future__ import annotations

import contextvars
import logging
import random
import statistics
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from openautoglm.adapters.cache import CallCache, cache_key
from openautoglm.core.nlp.parse import ParseError
from openautoglm.core.nlp.prompts import Message, build_messages, repair_messages
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig, TaskType
from openautoglm.core.prompt.budget import charge, record_fresh, record_tokens

log = logging.getLogger(__name__)

#: What a model is timed on when it is calibrated (:meth:`ModelBackend.calibrate`): a Chinese review of about
#: 90 characters, the API's usual input. (Timed this way, English costs less per character than estimated.)
CALIBRATION_TEXT = (
    "这家店的外卖送得很快，包装也很仔细，菜到的时候还是热的。味道不错，分量也足，价格合理。"
    "唯一的问题是米饭有点硬，汤也洒了一点，希望商家以后注意。总体来说还是满意的，下次还会再点。"
)


@dataclass
class BatchStats:
    """Counts for one batch: model calls, cache hits, tokens, retries, and errors by code."""

    calls: int = 0
    cache_hits: int = 0
    tokens: int = 0
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def merge(self, other: BatchStats) -> BatchStats:
        return BatchStats(
            calls=self.calls + other.calls,
            cache_hits=self.cache_hits + other.cache_hits,
            tokens=self.tokens + other.tokens,
            retries=self.retries + other.retries,
            errors=self.errors + other.errors,
        )

    @classmethod
    def from_dict(cls, counts: Mapping[str, Any]) -> BatchStats:
        """The counts :meth:`as_dict` wrote (a batch's, sent back from a worker)."""
        return cls(
            calls=int(counts.get("calls", 0)),
            cache_hits=int(counts.get("cache_hits", 0)),
            tokens=int(counts.get("tokens", 0)),
            retries=int(counts.get("retries", 0)),
            errors=Counter(counts.get("errors") or {}),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "tokens": self.tokens,
            "retries": self.retries,
            "errors": dict(self.errors),
        }


class ModelBackend(ABC):
    """A model that can do some NLP tasks over a batch of rows.

    Subclasses set :attr:`tasks` and implement :meth:`predict`. One instance per process and model (see
    :func:`openautoglm.adapters.models.load_backend`); ``predict`` may be called from several threads.
    """

    tasks: ClassVar[frozenset[TaskType]] = frozenset()
    kind: ClassVar[str] = "model"

    def __init__(self, model: str) -> None:
        self.model = model
        #: Where the model came from, when it says (a registered student: teacher, registry name and version).
        self.metadata: dict[str, Any] = {}

    @abstractmethod
    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        """One result per row, in order."""

    def prepare(self, config: TaskConfig) -> None:
        """Do now what the first call under ``config`` would do before its rows (a server calls it at start-up
        for the configuration it expects most); nothing by default."""
        return None

    def lane_copy(self) -> ModelBackend | None:
        """Another instance for a serving lane of its own, sharing what the lanes must share; ``None`` (the
        default): nothing is shared, the server builds one from the backend's factory."""
        return None

    # --- what a call costs ---------------------------------------------------------------------------------
    #: Seconds one character of input costs this model, measured by :meth:`calibrate` (``None`` until then).
    seconds_per_char: float | None = None

    def calibrate(self, config: TaskConfig, repeats: int = 3) -> None:
        """Measure what a character costs the loaded model: ``predict`` on one row of :data:`CALIBRATION_TEXT`
        under ``config`` (the task to serve), one warm-up call, then the median of ``repeats`` timed calls,
        outside the cache. Sets :attr:`seconds_per_char`, which :meth:`cost` reads. Not for API models (a call is
        billed, and its time is the network's)."""
        pair = CALIBRATION_TEXT if config.kind.needs_pair else None
        row = Row(row_id=0, text=CALIBRATION_TEXT, text_pair=pair)
        off = CallCache(Path("calibration-cache-off.sqlite"), "off")  # mode off: no file is touched
        self.predict(config, [row], off)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            self.predict(config, [row], off)
            times.append(time.perf_counter() - started)
        self.seconds_per_char = statistics.median(times) / max(1, self.input_chars(config, [row]))

    def timings(self) -> dict[str, float]:
        """Seconds per character of what :meth:`calibrate` timed, by name (empty before)."""
        return {} if self.seconds_per_char is None else {self.model: self.seconds_per_char}

    def input_chars(self, config: TaskConfig, rows: Sequence[Row]) -> int:
        """Characters the model reads for ``rows`` under ``config``: each row's text and second text."""
        return sum(len(r.text) + len(r.text_pair or "") for r in rows)

    def cost(self, config: TaskConfig, rows: Sequence[Row]) -> float | None:
        """Estimated seconds of model time for ``rows`` under ``config`` (:meth:`input_chars` x
        :attr:`seconds_per_char`), computed without running anything; ``None`` before :meth:`calibrate`."""
        if self.seconds_per_char is None:
            return None
        return self.seconds_per_char * self.input_chars(config, rows)


def label_results(
    model: str,
    rows: Sequence[Row],
    classes: Sequence[str],
    probs: Any,
    *,
    wanted: Sequence[str] | None,
    method: str,
    seconds: float,
) -> list[RowResult]:
    """Results of a model that scores its own ``classes`` (``probs``: ``(rows, classes)``), answering among
    ``wanted`` (a subset of them, renormalised; default all).

    Raises:
        ConfigurationError: ``wanted`` names a label the model never learned.
    """
    import json

    import numpy as np

    from openautoglm.core.errors import ConfigurationError

    labels = [str(c) for c in classes]
    chosen_labels = list(wanted or labels)
    unknown = [label for label in chosen_labels if label not in labels]
    if unknown:
        raise ConfigurationError(f"{model} never learned the labels {unknown}.", hint=f"its labels are {labels}")
    matrix = np.asarray(probs, dtype=np.float64).reshape(len(rows), len(labels))
    chosen = matrix[:, [labels.index(label) for label in chosen_labels]]
    chosen = chosen / np.clip(chosen.sum(axis=1, keepdims=True), 1e-12, None)
    per_row = seconds * 1000 / max(1, len(rows))
    results = []
    for row, p in zip(rows, chosen, strict=True):
        best = int(p.argmax())
        scores = {label: round(float(v), 4) for label, v in zip(chosen_labels, p, strict=True)}
        results.append(
            RowResult(
                row_id=row.row_id,
                prediction=chosen_labels[best],
                score=float(p[best]),
                raw=json.dumps({"method": method, "scores": scores}, ensure_ascii=False),
                latency_ms=per_row,
            )
        )
    return results


class BackendCallError(Exception):
    """A model call failed.

    Attributes:
        code: A short code for counting (``429``, ``1302``, ``timeout``, ``401``...).
        retryable: Worth retrying after a pause.
        throttled: The server asked us to slow down (lower the concurrency).
        fatal: Every further call will fail the same way (bad key, account in arrears): stop the batch.
    """

    def __init__(
        self, message: str, *, code: str, retryable: bool, throttled: bool = False, fatal: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.throttled = throttled
        self.fatal = fatal


class SkippedCall(BackendCallError):
    """Not sent: an earlier call failed in a way every call would (see ``fatal``)."""


@dataclass(frozen=True)
class Completion:
    """A generative model's answer."""

    text: str
    tokens: int = 0


class AdaptiveLimiter:
    """A concurrency limit that halves when the server throttles and creeps back up on success (AIMD).

    Args:
        maximum: The configured limit; the limit never goes above it or below 1.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = float(self.maximum)
        self.in_flight = 0
        self._cond = threading.Condition()

    def __enter__(self) -> AdaptiveLimiter:
        with self._cond:
            while self.in_flight >= int(self.limit):
                self._cond.wait()
            self.in_flight += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    def success(self) -> None:
        with self._cond:
            self.limit = min(float(self.maximum), self.limit + 1.0 / max(self.limit, 1.0))
            self._cond.notify_all()

    def throttled(self) -> None:
        with self._cond:
            self.limit = max(1.0, self.limit / 2.0)


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0.0, min(cap, base * (2.0**attempt)))


class GenerativeBackend(ModelBackend):
    """A chat model that answers in text; subclasses implement :meth:`complete`.

    Args:
        model: Model name sent to the endpoint.
        max_concurrency: Calls in flight at once in this process (adapts down on throttling).
        max_retries: Retries of a retryable failure before the row is marked ``error``.
        backoff_base, backoff_cap: Backoff in seconds (see :func:`backoff_seconds`).
        temperature: Sampling temperature (0 = deterministic, and cacheable).
    """

    tasks = frozenset({"text_classification", "ner", "semantic_matching"})
    kind = "generative"

    def __init__(
        self,
        model: str,
        *,
        max_concurrency: int = 5,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        temperature: float = 0.0,
        max_tokens: int = 512,
        seed: int | None = None,
    ) -> None:
        super().__init__(model)
        self.limiter = AdaptiveLimiter(max_concurrency)
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._rng = random.Random(seed)
        self._sleep: Callable[[float], None] = time.sleep
        # After a fatal error (bad key, account in arrears) every call in this process fails fast for a while,
        # also in batches running in parallel; then one call may try again (the key may have been fixed).
        self._fatal: tuple[float, BackendCallError] | None = None
        self.fatal_pause_s = 60.0

    @abstractmethod
    def complete(self, messages: list[Message]) -> Completion:
        """One call. Raise :class:`BackendCallError` on failure."""

    def input_chars(self, config: TaskConfig, rows: Sequence[Row]) -> int:
        """Characters of every row's prompt: the template with the row, and each few-shot demonstration."""
        template = len(config.template)
        shots = sum(template + len(e.text) + len(e.text_pair or "") for e in config.few_shot)
        return sum(template + shots + len(r.text) + len(r.text_pair or "") for r in rows)

    def token_estimate(self, messages: list[Message]) -> int:
        """An upper bound of a call's tokens: one per prompt character plus the completion limit."""
        return sum(len(m["content"]) for m in messages) + self.max_tokens

    def request(self, messages: list[Message]) -> dict[str, Any]:
        """What identifies a call for the cache (no key, no endpoint)."""
        return {
            "backend": self.kind,
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        stats = BatchStats()
        lock = threading.Lock()

        def one(row: Row) -> RowResult:
            local = BatchStats()
            result = self._predict_row(config, row, cache, local)
            with lock:
                nonlocal stats
                stats = stats.merge(local)
            return result

        workers = min(self.max_concurrency, max(1, len(rows)))
        # Each row runs in a copy of the caller's context, so a budget opened by the caller holds in the threads.
        contexts = [contextvars.copy_context() for _ in rows]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{self.kind}-call") as pool:
            results = list(pool.map(lambda c, r: c.run(one, r), contexts, rows))
        return results, stats

    def _predict_row(self, config: TaskConfig, row: Row, cache: CallCache, stats: BatchStats) -> RowResult:
        messages = build_messages(config, row)
        started = time.perf_counter()
        calls_before = stats.calls
        try:
            answer = self._call(messages, cache, stats)
            try:
                prediction, score = config.kind.parse(answer.text, row.text, config)
                status, reason = "ok", ""
            except ParseError as first:
                repair = repair_messages(messages, answer.text, str(first), config)
                answer = self._call(repair, cache, stats)
                try:
                    prediction, score = config.kind.parse(answer.text, row.text, config)
                    status, reason = "ok", ""
                except ParseError as second:
                    prediction, score = None, None
                    status, reason = "unparsed", f"answer broke the format twice: {first}; then: {second}"
        except BackendCallError as error:
            return RowResult(
                row_id=row.row_id,
                prediction=None,
                status="error",
                reason=f"{error.code}: {error}",
                latency_ms=(time.perf_counter() - started) * 1000,
                calls=stats.calls - calls_before,
            )
        calls = stats.calls - calls_before
        return RowResult(
            row_id=row.row_id,
            prediction=prediction,
            score=score,
            raw=answer.text,
            status=status,  # type: ignore[arg-type]
            reason=reason,
            latency_ms=(time.perf_counter() - started) * 1000 if calls else 0.0,
            calls=calls,
            tokens=answer.tokens if calls else 0,
        )

    def _call(self, messages: list[Message], cache: CallCache, stats: BatchStats) -> Completion:
        key = cache_key(self.request(messages))
        # A budgeted search pays once per distinct request it can reuse; a sampled answer, or one the cache will
        # not give back, is a new request every time.
        reusable = self.temperature == 0.0 and cache.mode == "use"
        new = charge(key if reusable else f"{key}:{uuid.uuid4()}", self.token_estimate(messages))
        cached = cache.get(key)
        if cached is not None:
            stats.cache_hits += 1
            if new:
                record_tokens(cached.get("tokens", 0))
            return Completion(text=cached["text"], tokens=cached.get("tokens", 0))
        attempt = 0
        while True:
            try:
                with self.limiter:
                    # Checked and set while holding a slot, so a call waiting for the slot sees it.
                    fatal = self._fatal
                    if fatal is not None and time.monotonic() < fatal[0]:
                        raise SkippedCall(
                            f"skipped: an earlier call failed for good ({fatal[1]})",
                            code=fatal[1].code,
                            retryable=False,
                        )
                    record_fresh(1)
                    stats.calls += 1
                    try:
                        completion = self.complete(messages)
                    except BackendCallError as error:
                        if error.fatal:
                            self._fatal = (time.monotonic() + self.fatal_pause_s, error)
                        raise
                self.limiter.success()
                stats.tokens += completion.tokens
                if new:
                    record_tokens(completion.tokens)
                if self.temperature == 0.0:
                    cache.put(key, {"text": completion.text, "tokens": completion.tokens})
                return completion
            except SkippedCall:
                raise
            except BackendCallError as error:
                stats.errors[error.code] += 1
                if error.throttled:
                    self.limiter.throttled()
                if not error.retryable or attempt >= self.max_retries:
                    raise
                stats.retries += 1
                self._sleep(backoff_seconds(attempt, self.backoff_base, self.backoff_cap, self._rng))
                attempt += 1
