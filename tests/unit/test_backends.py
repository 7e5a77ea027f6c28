"""The generative backend's policies with a scripted model: retries, backoff, throttling, repair, the cache."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from openautoglm.adapters.cache import CallCache, cache_key
from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.models.base import (
    AdaptiveLimiter,
    BackendCallError,
    Completion,
    GenerativeBackend,
    backoff_seconds,
)
from openautoglm.adapters.models.zhipu import classify_error
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.prompts import Message
from openautoglm.core.nlp.types import Row, TaskConfig

CONFIG = TaskConfig(labels=("正面", "负面"))


class Scripted(GenerativeBackend):
    """Answers from a function of (call number, messages); records every call."""

    kind = "scripted"

    def __init__(self, answer: Callable[[int, list[Message]], str], **options: object) -> None:
        super().__init__("scripted-model", **options)  # type: ignore[arg-type]
        self.answer = answer
        self.calls: list[list[Message]] = []
        self.sleeps: list[float] = []
        self._sleep = self.sleeps.append
        self._lock = threading.Lock()

    def complete(self, messages: list[Message]) -> Completion:
        with self._lock:
            self.calls.append(messages)
            n = len(self.calls)
        return Completion(text=self.answer(n, messages), tokens=10)


def label(value: str) -> str:
    return json.dumps({"label": value}, ensure_ascii=False)


@pytest.fixture
def cache(tmp_path: Path) -> CallCache:
    return CallCache(tmp_path / "calls.sqlite")


def test_answers_are_parsed_and_cached(cache: CallCache) -> None:
    backend = Scripted(lambda n, m: label("正面"))
    results, stats = backend.predict(CONFIG, [Row(0, "好"), Row(1, "棒")], cache)
    assert [r.prediction for r in results] == ["正面", "正面"]
    assert stats.calls == 2 and stats.tokens == 20
    again, stats = backend.predict(CONFIG, [Row(0, "好"), Row(1, "棒")], cache)
    assert stats.calls == 0 and stats.cache_hits == 2 and len(backend.calls) == 2
    assert [r.calls for r in again] == [0, 0]


def test_a_broken_answer_gets_one_repair_round(cache: CallCache) -> None:
    backend = Scripted(lambda n, m: "我觉得是正面" if len(m) == 2 else label("负面"))
    (result,), _ = backend.predict(CONFIG, [Row(0, "慢")], cache)
    assert result.prediction == "负面" and result.status == "ok" and result.calls == 2
    assert "不是合法的JSON" in backend.calls[1][-1]["content"]


def test_twice_broken_is_unparsed_with_both_reasons(cache: CallCache) -> None:
    backend = Scripted(lambda n, m: label("差评"))
    (result,), _ = backend.predict(CONFIG, [Row(0, "慢")], cache)
    assert result.status == "unparsed" and result.prediction is None
    assert result.reason.count("差评") == 2
    assert result.raw == label("差评")


def test_retryable_errors_back_off_and_succeed(cache: CallCache) -> None:
    def answer(n: int, m: list[Message]) -> str:
        if n <= 2:
            raise BackendCallError("busy", code="1302", retryable=True, throttled=True)
        return label("正面")

    backend = Scripted(answer, max_concurrency=4)
    (result,), stats = backend.predict(CONFIG, [Row(0, "好")], cache)
    assert result.status == "ok" and stats.retries == 2 and stats.errors == {"1302": 2}
    assert len(backend.sleeps) == 2 and all(0 <= s <= 20 for s in backend.sleeps)
    assert backend.limiter.limit < 4  # throttling lowered the limit


def test_exhausted_retries_mark_the_row_with_the_code(cache: CallCache) -> None:
    def answer(n: int, m: list[Message]) -> str:
        raise BackendCallError("overloaded", code="1305", retryable=True)

    backend = Scripted(answer, max_retries=3)
    (result,), stats = backend.predict(CONFIG, [Row(0, "好")], cache)
    assert result.status == "error" and result.reason.startswith("1305")
    assert stats.calls == 4 and stats.retries == 3


def test_non_retryable_errors_are_not_retried(cache: CallCache) -> None:
    def answer(n: int, m: list[Message]) -> str:
        raise BackendCallError("bad request", code="1214", retryable=False)

    backend = Scripted(answer)
    (result,), stats = backend.predict(CONFIG, [Row(0, "好")], cache)
    assert result.status == "error" and stats.calls == 1 and stats.retries == 0


def test_a_fatal_error_stops_the_batch(cache: CallCache) -> None:
    def answer(n: int, m: list[Message]) -> str:
        raise BackendCallError("bad key", code="401", retryable=False, fatal=True)

    backend = Scripted(answer, max_concurrency=1)
    results, stats = backend.predict(CONFIG, [Row(i, f"t{i}") for i in range(20)], cache)
    assert stats.calls == 1
    assert {r.status for r in results} == {"error"}
    assert "earlier call failed for good (bad key)" in results[-1].reason
    assert results[-1].reason.startswith("401")


def test_concurrency_never_exceeds_the_limit(cache: CallCache) -> None:
    active, peak = 0, 0
    lock = threading.Lock()

    def answer(n: int, m: list[Message]) -> str:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.01)
        with lock:
            active -= 1
        return label("正面")

    backend = Scripted(answer, max_concurrency=3)
    backend.predict(CONFIG, [Row(i, f"t{i}") for i in range(30)], cache)
    assert peak == 3


def test_limiter_is_aimd() -> None:
    limiter = AdaptiveLimiter(8)
    limiter.throttled()
    limiter.throttled()
    assert limiter.limit == 2
    for _ in range(100):
        limiter.success()
    assert limiter.limit == 8
    for _ in range(10):
        limiter.throttled()
    assert limiter.limit == 1


def test_backoff_is_jittered_and_capped() -> None:
    import random

    rng = random.Random(0)
    values = [backoff_seconds(a, 0.5, 4.0, rng) for a in range(10)]
    assert all(0 <= v <= 4.0 for v in values)
    assert len(set(values)) == 10


def test_cache_keys_leave_secrets_and_endpoints_out() -> None:
    a = cache_key({"model": "glm-4", "messages": [1], "api_key": "k1", "base_url": "http://a"})
    b = cache_key({"model": "glm-4", "messages": [1], "api_key": "k2", "base_url": "http://b"})
    assert a == b and len(a) == 64
    assert cache_key({"model": "glm-4", "messages": [2]}) != a


def test_cache_modes(tmp_path: Path) -> None:
    store = CallCache(tmp_path / "c.sqlite")
    store.put("k", {"text": "x"})
    assert store.get("k") == {"text": "x"}
    assert CallCache(tmp_path / "c.sqlite", "refresh").get("k") is None
    off = CallCache(tmp_path / "other.sqlite", "off")
    off.put("k", 1)
    assert off.get("k") is None and not (tmp_path / "other.sqlite").exists()


def test_cache_is_shared_between_processes(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "shared.sqlite"
    CallCache(path).put("from-parent", {"v": 1})
    code = (
        f"from openautoglm.adapters.cache import CallCache; c = CallCache({str(path)!r}); "
        "assert c.get('from-parent') == {'v': 1}; c.put('from-child', {'v': 2})"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert CallCache(path).get("from-child") == {"v": 2}


def test_zhipu_errors_map_to_the_retry_policy() -> None:
    import httpx
    from zhipuai.core._errors import APIReachLimitError, APIRequestFailedError, APIServerFlowExceedError

    def error(cls: type, status: int, code: str) -> Exception:
        response = httpx.Response(
            status, json={"error": {"code": code, "message": "m"}}, request=httpx.Request("POST", "http://x")
        )
        return cls("m", response=response)

    throttle = classify_error(error(APIReachLimitError, 429, "1302"))
    assert throttle.retryable and throttle.throttled and throttle.code == "1302"
    arrears = classify_error(error(APIReachLimitError, 429, "1113"))
    assert not arrears.retryable and arrears.fatal
    overload = classify_error(error(APIServerFlowExceedError, 503, "1305"))
    assert overload.retryable and not overload.throttled
    bad = classify_error(error(APIRequestFailedError, 400, "1214"))
    assert not bad.retryable and not bad.fatal


def test_model_strings_pick_backends() -> None:
    assert ModelSpec(model="glm-4-flash").backend == "zhipu"
    assert ModelSpec(model="local-use").backend == "local_use"
    assert ModelSpec(model="local-lac").backend == "local_lac"
    assert ModelSpec(model="local:/models/x").backend == "local-hf"
    with pytest.raises(ConfigurationError, match="Unknown model 'gpt-4'"):
        ModelSpec(model="gpt-4").backend  # noqa: B018


def test_no_key_names_the_offline_models() -> None:
    from openautoglm.adapters.models.zhipu import ZhipuBackend

    with pytest.raises(ConfigurationError) as info:
        ZhipuBackend("glm-4", api_key=None)
    assert "local-use" in str(info.value) and "ZHIPUAI_API_KEY" in str(info.value)
