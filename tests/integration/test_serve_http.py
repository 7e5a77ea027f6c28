"""`openautoglm serve` as real processes over real HTTP: the seed's example with a token, metrics scraped,
oversized bodies refused before the model, the rate limit shared by two processes through Redis, and the
circuit breaker against the fake Zhipu server (the real zhipuai SDK on the wire)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from openautoglm.serve.testing import Signer, api_process, keys_json
from openautoglm.testing.fake_zhipu import FakeZhipuServer, Fault
from tests.conftest import require_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIGNER = Signer.rsa("it-1")
SEED = {
    "text": "物流很快，包装也很好，非常满意",
    "labels": ["正面", "负面", "中性"],
    "prompt_template": "判断以下用户反馈的情感倾向:{text}",
}


def bearer(sub: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {SIGNER.token(sub, roles)}"}


def samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], metric: str, **labels: str) -> float:
    return sum(v for (n, ls), v in metrics.items() if n == metric and all((k, x) in ls for k, x in labels.items()))


def test_seed_example_metrics_and_oversized_bodies(tmp_path: Path) -> None:
    env = {
        "OPENAUTOGLM_HOME": str(tmp_path / "home"),
        "OPENAUTOGLM_SERVE_JWT_KEYS": keys_json(SIGNER),
        "OPENAUTOGLM_SERVE_MAX_BODY_BYTES": "65536",
    }
    with api_process(env, tmp_path / "api.log") as base:
        response = httpx.post(f"{base}/api/v1/classify", json=SEED, headers=bearer("alice", "viewer"), timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["code"] == 0 and body["message"] == "success"
        assert body["data"]["label"] in SEED["labels"] and body["data"]["status"] == "ok"
        assert body["data"]["model"] == "local-online" and 0 < body["data"]["score"] <= 1
        assert body["data"]["answered_by"] == "zero-shot"  # a fresh server: the teacher answers a new label set
        assert body["data"]["label"] == "正面", body  # the seed's own example, answered right by the default

        ner = httpx.post(
            f"{base}/api/v1/ner",
            json={"text": "张伟昨天从北京飞到了上海。"},
            headers=bearer("alice", "viewer"),
            timeout=30,
        ).json()
        assert {(e["text"], e["type"]) for e in ner["data"]["entities"]} >= {("北京", "LOC"), ("上海", "LOC")}
        match = httpx.post(
            f"{base}/api/v1/match",
            json={"text": "今天天气很好", "text_pair": "今天的天气不错"},
            headers=bearer("alice", "viewer"),
            timeout=30,
        ).json()
        assert match["code"] == 0 and match["data"]["score"] > 0.5

        before = samples(base)
        rows_before = value(before, "openautoglm_model_batch_rows_count")
        big = httpx.post(
            f"{base}/api/v1/classify", json={"text": "好" * 40_000}, headers=bearer("alice", "viewer"), timeout=30
        )
        assert big.status_code == 413 and big.json()["code"] == 41300
        many = httpx.post(
            f"{base}/api/v1/classify/batch", json={"texts": ["好"] * 300}, headers=bearer("alice", "viewer"), timeout=30
        )
        assert many.status_code == 413 and many.json()["code"] == 41301
        after = samples(base)
        assert value(after, "openautoglm_model_batch_rows_count") == rows_before  # no model call for either
        assert value(after, "openautoglm_http_requests_total", route="/api/v1/classify", status="200") == 1
        assert value(after, "openautoglm_http_requests_total", status="413") == 2
        assert value(after, "openautoglm_models_ready") == 1
        assert value(after, "openautoglm_circuit_state", name="glm") == 0

        # The probe's envelope gaps, over real uvicorn: oversized headers, a trailing slash, a body before a token,
        # a few-shot text over the cap and a padded template (literal: no formatting) — none reaches the model.
        padded = httpx.get(f"{base}/healthz", headers={"x-padding": "p" * 20_000}, timeout=10)
        assert padded.status_code == 431 and padded.json()["code"] == 43100
        slash = httpx.post(f"{base}/api/v1/classify/", json=SEED, headers=bearer("alice", "viewer"), timeout=10)
        assert slash.status_code == 404 and slash.json()["code"] == 40400
        untokened = httpx.post(
            f"{base}/api/v1/classify", content=b"{not json", headers={"content-type": "application/json"}, timeout=10
        )
        assert untokened.status_code == 401 and untokened.json()["code"] == 40100
        shots = {"text": "好", "few_shot": [{"text": "好" * 5000, "label": "正面"}, {"text": "差", "label": "负面"}]}
        long_shot = httpx.post(f"{base}/api/v1/classify", json=shots, headers=bearer("alice", "viewer"), timeout=10)
        assert long_shot.status_code == 422 and long_shot.json()["data"] == {"max_text_chars": 4096}
        assert value(samples(base), "openautoglm_model_batch_rows_count") == rows_before
        template = {"text": "好评", "prompt_template": "{text}{text:>400000000}"}
        literal = httpx.post(f"{base}/api/v1/classify", json=template, headers=bearer("alice", "viewer"), timeout=30)
        assert literal.status_code == 200, literal.text


def test_no_token_is_written_to_the_access_log(tmp_path: Path) -> None:
    """uvicorn's access log writes each request line with its query string: a token put there (by a client that
    cannot set headers) is written ``[REDACTED]``, as is any JWT, on every route and status."""
    env = {
        "OPENAUTOGLM_HOME": str(tmp_path / "home"),
        "OPENAUTOGLM_SERVE_JWT_KEYS": keys_json(SIGNER),
        # API models: nothing to load, and no request here reaches them.
        "OPENAUTOGLM_SERVE_CLASSIFY_MODEL": "glm-4-flash",
        "OPENAUTOGLM_SERVE_NER_MODEL": "glm-4-flash",
        "OPENAUTOGLM_SERVE_MATCH_MODEL": "glm-4-flash",
        "OPENAUTOGLM_SERVE_GLM_BASE_URL": "http://127.0.0.1:9/api/paas/v4/",
        "ZHIPUAI_API_KEY": "not-used.by-this-test",
    }
    token = SIGNER.token("alice", ["admin"])
    log = tmp_path / "api.log"
    with api_process(env, log, log_level="info") as base:
        assert httpx.get(f"{base}/healthz?token={token}", timeout=10).status_code == 200
        assert httpx.get(f"{base}/api/v1/admin/circuit?access_token={token}", timeout=10).status_code == 401
        assert httpx.get(f"{base}/api/v1/no-such?x=1&jwt={token}", headers=bearer("alice", "viewer")).status_code == 404
        assert httpx.get(f"{base}/healthz?state={token}", timeout=10).status_code == 200  # a JWT under any name
    written = log.read_text(errors="replace")
    assert "GET /healthz?token=[REDACTED] HTTP/1.1" in written, written[-3000:]
    assert "GET /api/v1/admin/circuit?access_token=[REDACTED] HTTP/1.1" in written
    assert "/api/v1/no-such?x=1&jwt=[REDACTED] HTTP/1.1" in written and "GET /healthz?state=[REDACTED]" in written
    signature = token.rsplit(".", 1)[1]
    assert token not in written and signature not in written


def test_rate_limit_holds_across_two_processes_with_redis(tmp_path: Path) -> None:
    require_service("Redis", "127.0.0.1", 6379)
    env = {
        "OPENAUTOGLM_HOME": str(tmp_path / "home"),
        "OPENAUTOGLM_SERVE_JWT_KEYS": keys_json(SIGNER),
        "OPENAUTOGLM_SERVE_RATE_LIMIT": "6/minute",
        "OPENAUTOGLM_SERVE_RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379/0",
        "OPENAUTOGLM_SERVE_RATE_LIMIT_NAMESPACE": f"test-{uuid.uuid4().hex}",
    }
    with api_process(env, tmp_path / "a.log") as a, api_process(env, tmp_path / "b.log") as b:
        assert httpx.get(f"{a}/readyz").json()["data"]["rate_limit_store"] == "ok"
        statuses, retry_after = [], []
        for i in range(10):  # alternate between the processes: 5 requests each
            response = httpx.get(f"{(a, b)[i % 2]}/api/v1/admin/circuit", headers=bearer("carol", "admin"), timeout=10)
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.json()["code"] == 42900
                retry_after.append(int(response.headers["retry-after"]))
        assert statuses == [200] * 6 + [429] * 4  # one budget of 6 for the subject, not 6 per process
        assert all(1 <= r <= 60 for r in retry_after)
        # Another subject has its own budget, on either process.
        assert httpx.get(f"{b}/api/v1/admin/circuit", headers=bearer("dave", "admin")).status_code == 200
        refused = value(samples(a), "openautoglm_rate_limited_total") + value(
            samples(b), "openautoglm_rate_limited_total"
        )
        assert refused == 4


def test_circuit_breaker_opens_on_upstream_failures_and_closes_after_recovery(tmp_path: Path) -> None:
    with FakeZhipuServer(fault=Fault(overload=1.0)) as upstream:
        env = {
            "OPENAUTOGLM_HOME": str(tmp_path / "home"),
            "OPENAUTOGLM_SERVE_JWT_KEYS": keys_json(SIGNER),
            "OPENAUTOGLM_SERVE_CLASSIFY_MODEL": "glm-4-flash",
            "OPENAUTOGLM_SERVE_GLM_BASE_URL": upstream.base_url,
            "OPENAUTOGLM_SERVE_GLM_MAX_RETRIES": "0",
            "OPENAUTOGLM_SERVE_BREAKER_FAIL_MAX": "3",
            "OPENAUTOGLM_SERVE_BREAKER_RESET_S": "3",
            "OPENAUTOGLM_SERVE_CACHE": "off",
            "ZHIPUAI_API_KEY": upstream.api_key,
        }
        with api_process(env, tmp_path / "api.log") as base:
            headers = bearer("erin", "viewer")

            def classify(text: str) -> httpx.Response:
                return httpx.post(f"{base}/api/v1/classify", json={**SEED, "text": text}, headers=headers, timeout=30)

            first = [classify(f"坏{i}") for i in range(3)]
            assert [r.status_code for r in first[:2]] == [502, 502]
            assert first[0].json()["code"] == 50200
            assert first[2].status_code == 503  # the third failure trips the breaker
            sent = upstream.requests
            assert sent == 3

            started = time.perf_counter()
            fast = [classify(f"坏{i}") for i in range(3, 10)]
            elapsed = time.perf_counter() - started
            assert {r.status_code for r in fast} == {503}
            assert {r.json()["code"] for r in fast} == {50300}
            assert all(1 <= int(r.headers["retry-after"]) <= 3 for r in fast)
            assert upstream.requests == sent  # no call reached the upstream while open
            assert elapsed / len(fast) < 0.25  # fast: no upstream round trip
            admin = httpx.get(f"{base}/api/v1/admin/circuit", headers=bearer("root", "admin")).json()["data"]
            assert admin["state"] == "open"
            metrics = samples(base)
            assert value(metrics, "openautoglm_circuit_state", name="glm") == 2
            assert value(metrics, "openautoglm_upstream_errors_total", code="circuit_open") >= 7
            assert value(metrics, "openautoglm_upstream_errors_total", code="1305") == 3

            upstream.fault = Fault()  # the upstream recovers
            time.sleep(3.2)
            recovered = classify("很好，正面")
            assert recovered.status_code == 200, recovered.text
            assert recovered.json()["data"]["label"] == "正面"
            assert upstream.requests == sent + 1  # exactly one trial call
            assert value(samples(base), "openautoglm_circuit_state", name="glm") == 0


def test_circuit_state_is_shared_through_redis(tmp_path: Path) -> None:
    require_service("Redis", "127.0.0.1", 6379)
    with FakeZhipuServer(fault=Fault(overload=1.0)) as upstream:
        env = {
            "OPENAUTOGLM_HOME": str(tmp_path / "home"),
            "OPENAUTOGLM_SERVE_JWT_KEYS": keys_json(SIGNER),
            "OPENAUTOGLM_SERVE_CLASSIFY_MODEL": "glm-4-flash",
            "OPENAUTOGLM_SERVE_GLM_BASE_URL": upstream.base_url,
            "OPENAUTOGLM_SERVE_GLM_MAX_RETRIES": "0",
            "OPENAUTOGLM_SERVE_BREAKER_FAIL_MAX": "2",
            "OPENAUTOGLM_SERVE_BREAKER_RESET_S": "30",
            "OPENAUTOGLM_SERVE_BREAKER_STORAGE": "redis://127.0.0.1:6379/0",
            "OPENAUTOGLM_SERVE_RATE_LIMIT_NAMESPACE": f"test-{uuid.uuid4().hex}",
            "OPENAUTOGLM_SERVE_CACHE": "off",
            "ZHIPUAI_API_KEY": upstream.api_key,
        }
        with api_process(env, tmp_path / "a.log") as a, api_process(env, tmp_path / "b.log") as b:
            headers = bearer("frank", "viewer")
            body = {**SEED, "text": "坏"}
            tripped = [httpx.post(f"{a}/api/v1/classify", json=body, headers=headers, timeout=30) for _ in range(2)]
            assert [r.status_code for r in tripped] == [502, 503]
            assert upstream.requests == 2
            # The other process has made no call itself, yet it sees the open circuit and answers at once.
            other = httpx.post(f"{b}/api/v1/classify", json=body, headers=headers, timeout=30)
            assert other.status_code == 503 and other.json()["code"] == 50300
            assert upstream.requests == 2
            assert value(samples(b), "openautoglm_circuit_state", name="glm") == 2
            # An admin closes it (on either process) for everyone.
            reset = httpx.post(f"{b}/api/v1/admin/circuit/reset", headers=bearer("root", "admin"), timeout=10)
            assert reset.json()["data"]["state"] == "closed"
            upstream.fault = Fault()
            assert httpx.post(f"{a}/api/v1/classify", json=body, headers=headers, timeout=30).status_code == 200
