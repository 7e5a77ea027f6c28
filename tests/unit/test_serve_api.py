"""The API in-process: envelope everywhere, caps before any model call, micro-batching, metrics, CORS, errors."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from openautoglm.serve.app import create_app
from openautoglm.serve.batcher import MicroBatcher
from openautoglm.serve.envelope import Code
from openautoglm.serve.settings import ServeSettings
from openautoglm.serve.testing import FakeModel, Signer, keys_json

SIGNER = Signer.ec("k1")


def make_settings(**extra: Any) -> ServeSettings:
    options: dict[str, Any] = {
        "classify_model": "serve-fake",
        "ner_model": "serve-fake",
        "match_model": "serve-fake",
        "cache": "off",
        "jwt_keys": keys_json(SIGNER),
        "rate_limit": "10000/minute",
        "max_body_bytes": 4096,
        "max_batch_items": 8,
        "max_text_chars": 100,
    }
    return ServeSettings(**{**options, **extra})


def auth(role: str = "viewer", sub: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {SIGNER.token(sub, [role])}"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    FakeModel.reset()
    with TestClient(create_app(make_settings())) as c:
        yield c


def test_seed_example_through_the_envelope(client: TestClient) -> None:
    body = {
        "text": "物流很快，非常正面的体验",
        "labels": ["正面", "负面", "中性"],
        "prompt_template": "判断以下用户反馈的情感倾向:{text}",
    }
    response = client.post("/api/v1/classify", json=body, headers=auth())
    assert response.status_code == 200
    assert response.json() == {
        "code": 0,
        "data": {
            "label": "正面",
            "score": 1.0,
            "status": "ok",
            "reason": "",
            "answered_by": None,
            "model_version": None,
            "model": "serve-fake",
        },
        "message": "success",
    }


def test_batch_routes_keep_order(client: TestClient) -> None:
    texts = ["负面评价", "正面评价", "中性", "都不是"]
    data = client.post("/api/v1/classify/batch", json={"texts": texts}, headers=auth()).json()["data"]
    assert [r["label"] for r in data["results"]] == ["负面", "正面", "中性", "正面"]
    ner = client.post("/api/v1/ner/batch", json={"texts": ["上海", "去北京"]}, headers=auth()).json()["data"]
    assert ner["results"][0]["entities"] == [{"text": "上海", "type": "LOC", "start": 0, "end": 2}]
    assert ner["results"][1]["entities"][0]["start"] == 1
    pairs = [{"text": "abc", "text_pair": "abc"}, {"text": "abc", "text_pair": "xyz"}]
    match = client.post("/api/v1/match/batch", json={"pairs": pairs, "labels": ["不同", "相同"]}, headers=auth())
    assert [r["label"] for r in match.json()["data"]["results"]] == ["相同", "不同"]


def test_oversized_body_is_refused_before_reading_or_any_model_call(client: TestClient) -> None:
    big = {"text": "好" * 5000}
    response = client.post("/api/v1/classify", json=big, headers=auth())
    assert response.status_code == 413 and response.json()["code"] == Code.BODY_TOO_LARGE

    # Without a Content-Length (chunked), the stream is cut when it passes the limit.
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'"}'

    response = client.post("/api/v1/classify", content=chunks(), headers={**auth(), "content-type": "application/json"})
    assert response.status_code == 413
    # Not even a token is needed to be refused: the body is never read.
    assert client.post("/api/v1/classify", json=big).status_code == 413
    assert FakeModel.batches == []


def test_bodies_not_utf8_or_nested_too_deep_are_400_before_any_parser() -> None:
    FakeModel.reset()
    json_headers = {**auth(), "content-type": "application/json"}
    with TestClient(create_app(make_settings(max_body_bytes=1_048_576))) as c:

        def post(body: bytes, headers: dict[str, str] = json_headers) -> httpx.Response:
            return c.post("/api/v1/classify", content=body, headers=headers)

        not_utf8 = post(b'{"text": "\xff\xfe bytes"}')
        assert (not_utf8.status_code, not_utf8.json()["code"]) == (400, Code.BAD_JSON), not_utf8.text
        assert "not UTF-8" in not_utf8.json()["message"]
        deep = b"[" * 100_000 + b"]" * 100_000
        for body in (deep, b'{"text": "x", "a": ' + b"[" * 100_000, b'{"text": "x", "a": ' + b"[{}" * 50_000):
            response = post(body)
            assert (response.status_code, response.json()["code"]) == (400, Code.BAD_JSON), response.text[:300]
            assert "deeper than 64 levels" in response.json()["message"]
        # No Content-Type is parsed as JSON too; a streamed (chunked) body is checked once it has all arrived.
        assert post(deep, headers=auth()).status_code == 400
        assert (
            c.post("/api/v1/classify", content=iter([deep[:150_000], deep[150_000:]]), headers=json_headers).json()[
                "code"
            ]
            == Code.BAD_JSON
        )
        # 64 levels in all are fine (the extra field is then refused by validation); 65 are not.
        nested = {"text": "x", "extra": json.loads("[" * 63 + "]" * 63)}
        assert c.post("/api/v1/classify", json=nested, headers=auth()).status_code == 422
        nested["extra"] = [nested["extra"]]
        assert c.post("/api/v1/classify", json=nested, headers=auth()).status_code == 400
        # Brackets inside strings are text.
        assert c.post("/api/v1/classify", json={"text": "[{" * 40 + '\\"]'}, headers=auth()).status_code == 200
    assert FakeModel.batches == [1]


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        (b'{"a": [1, {"b": "]]]]"}]}', False),
        (b'"\\\\"' + b"[" * 100 + b"]" * 100, True),  # an escaped backslash ends the string before the brackets
        (b'"\\\\\\"' + b"[" * 100 + b'"', False),  # an escaped quote does not: the brackets are text
        (b"[" * 64 + b"]" * 64, False),
        (b"[" * 65 + b"]" * 65, True),
        (b"[]" * 300_000, False),
        (b"[" + b"[]," * 300_000 + b"[]]", False),
        (b"[[]," * 100, True),  # never closed, 100 deep: invalid JSON a parser would still recurse into
    ],
)
def test_json_depth_scan(body: bytes, refused: bool) -> None:
    from openautoglm.serve.middleware import json_body_problem

    started = time.perf_counter()
    assert (json_body_problem(body, 64) is not None) is refused
    assert time.perf_counter() - started < 0.5  # linear and in C: about a millisecond here


def test_batch_and_text_caps_before_any_model_call(client: TestClient) -> None:
    response = client.post("/api/v1/classify/batch", json={"texts": ["a"] * 9}, headers=auth())
    assert response.status_code == 413 and response.json()["code"] == Code.BATCH_TOO_LARGE
    response = client.post("/api/v1/classify", json={"text": "a" * 101}, headers=auth())
    assert response.status_code == 422 and response.json()["data"] == {"max_text_chars": 100}
    response = client.post("/api/v1/match", json={"text": "a", "text_pair": "b" * 101}, headers=auth())
    assert response.status_code == 422
    assert FakeModel.batches == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": ""}, 422, Code.INVALID),
        ({"text": "x", "labels": ["a"]}, 422, Code.INVALID),
        ({"text": "x", "labels": ["a", "a"]}, 422, Code.INVALID),
        ({"text": "x", "prompt_template": "no placeholder"}, 422, Code.INVALID),
        ({"text": "x", "labels": ["a", "b" * 201]}, 422, Code.INVALID),
        ({"text": "x", "verbalizers": {"a": "v" * 1001}}, 422, Code.INVALID),
        ({"text": "x", "unknown": 1}, 422, Code.INVALID),
        ({"text": "x", "few_shot": [{"text": "y", "label": "other"}]}, 422, Code.INVALID),
    ],
)
def test_invalid_bodies(client: TestClient, body: dict[str, Any], status: int, code: int) -> None:
    response = client.post("/api/v1/classify", json=body, headers=auth())
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert FakeModel.batches == []


def test_every_error_is_the_envelope_without_a_traceback(client: TestClient) -> None:
    cases = [
        client.get("/no/such/route"),
        client.get("/api/v1/classify", headers=auth()),
        client.post("/api/v1/classify", content=b"{not json", headers={**auth(), "content-type": "application/json"}),
        client.post("/api/v1/classify", json={"text": "x"}),
    ]
    assert [r.status_code for r in cases] == [404, 405, 400, 401]
    for response in cases:
        body = response.json()
        assert set(body) == {"code", "data", "message"} and body["code"] // 100 == response.status_code


def test_internal_error_is_500_envelope_without_details(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(self: Any, *args: Any) -> Any:
        raise RuntimeError("secret internal detail /etc/passwd")

    monkeypatch.setattr(FakeModel, "predict", explode)
    with TestClient(create_app(make_settings()), raise_server_exceptions=False) as c:
        response = c.post("/api/v1/classify", json={"text": "x"}, headers=auth())
    assert response.status_code == 500
    assert response.json() == {"code": 50000, "data": None, "message": "internal error"}
    assert "secret" not in response.text and "Traceback" not in response.text


def test_cors_is_closed_by_default_and_opens_only_to_listed_origins(client: TestClient) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    response = client.options("/api/v1/classify", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    response = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    with TestClient(create_app(make_settings(cors_origins=("https://app.example",)))) as c:
        ok = c.options("/api/v1/classify", headers={**preflight, "Origin": "https://app.example"})
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        bad = c.options("/api/v1/classify", headers=preflight)
        assert "access-control-allow-origin" not in bad.headers


def test_health_readiness_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"code": 0, "data": {"status": "ok"}, "message": "success"}
    ready = client.get("/readyz").json()["data"]
    assert ready["ready"] and ready["models_loaded"]
    client.post("/api/v1/classify/batch", json={"texts": ["a", "b", "c"]}, headers=auth())
    client.post("/api/v1/classify", json={"text": "x"})
    text = client.get("/metrics").text
    assert 'openautoglm_http_requests_total{method="POST",route="/api/v1/classify/batch",status="200"} 1.0' in text
    assert 'openautoglm_http_requests_total{method="POST",route="/api/v1/classify",status="401"} 1.0' in text
    assert "openautoglm_http_request_duration_seconds_bucket" in text
    assert 'openautoglm_model_batch_rows_sum{model="serve-fake",task="classify"} 3.0' in text
    assert 'openautoglm_cache_lookups_total{result="miss",task="classify"} 3.0' in text
    assert 'openautoglm_circuit_state{name="glm"} 0.0' in text
    assert "openautoglm_models_ready 1.0" in text


def test_metrics_can_require_admin() -> None:
    with TestClient(create_app(make_settings(metrics_public=False))) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=auth("viewer")).status_code == 403
        assert c.get("/metrics", headers=auth("admin")).status_code == 200


def test_rate_limit_per_subject_in_memory() -> None:
    with TestClient(create_app(make_settings(rate_limit="3/minute"))) as c:
        codes = [c.post("/api/v1/classify", json={"text": "x"}, headers=auth(sub="a")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        refused = c.post("/api/v1/classify", json={"text": "x"}, headers=auth(sub="a"))
        assert refused.json()["code"] == Code.RATE_LIMITED
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert c.post("/api/v1/classify", json={"text": "x"}, headers=auth(sub="b")).status_code == 200
        assert 'openautoglm_rate_limited_total{route="classify"} 2.0' in c.get("/metrics").text


def test_concurrent_requests_are_micro_batched() -> None:
    FakeModel.reset()
    FakeModel.delay_s = 0.05  # while a call runs, the others queue up
    app = create_app(make_settings(batch_max_rows=64, batch_max_wait_ms=20))

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            responses = await asyncio.gather(
                *[c.post("/api/v1/classify", json={"text": f"正面{i}"}, headers=auth()) for i in range(40)]
            )
        return [r.status_code for r in responses]

    assert asyncio.run(scenario()) == [200] * 40
    assert sum(FakeModel.batches) == 40
    # 40 requests, a handful of model calls (bounds loose enough for a loaded CI machine)
    assert len(FakeModel.batches) <= 10 and max(FakeModel.batches) >= 10, FakeModel.batches
    FakeModel.reset()


def test_unbatched_mode_calls_the_model_per_request() -> None:
    FakeModel.reset()
    app = create_app(make_settings(micro_batching=False))

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            await asyncio.gather(*[c.post("/api/v1/classify", json={"text": "x"}, headers=auth()) for _ in range(10)])

    asyncio.run(scenario())
    assert FakeModel.batches == [1] * 10


# --- the batcher on its own ------------------------------------------------------------------------------
def test_batcher_groups_by_key_and_returns_each_request_its_slice() -> None:
    calls: list[tuple[str, list[int]]] = []

    def double(key: str, items: list[int]) -> list[int]:
        calls.append((key, list(items)))
        time.sleep(0.02)
        return [i * 2 for i in items]

    async def scenario() -> list[list[int]]:
        batcher: MicroBatcher[str, int, int] = MicroBatcher(double, max_rows=100, max_wait_s=0.05)
        try:
            return await asyncio.gather(
                *[batcher.submit("even" if i % 2 == 0 else "odd", [i, i + 100]) for i in range(10)]
            )
        finally:
            await batcher.stop()

    results = asyncio.run(scenario())
    assert results == [[i * 2, (i + 100) * 2] for i in range(10)]
    assert sorted(k for k, _ in calls) == ["even", "odd"]
    assert sum(len(items) for _, items in calls) == 20


def test_batcher_wait_is_bounded_and_size_is_capped() -> None:
    sizes: list[int] = []

    def record(key: str, items: list[int]) -> list[int]:
        sizes.append(len(items))
        return items

    async def scenario() -> float:
        batcher: MicroBatcher[str, int, int] = MicroBatcher(record, max_rows=4, max_wait_s=0.05)
        try:
            started = time.perf_counter()
            await batcher.submit("k", [1])  # alone: waits at most max_wait_s
            alone = time.perf_counter() - started
            await asyncio.gather(*[batcher.submit("k", [i]) for i in range(10)])
            await batcher.submit("k", list(range(9)))  # larger than max_rows: sent alone, not split
            return alone
        finally:
            await batcher.stop()

    alone = asyncio.run(scenario())
    assert alone < 0.5
    assert sizes[0] == 1 and max(sizes[1:-1]) <= 4 and sum(sizes[1:-1]) == 10 and sizes[-1] == 9


def test_batcher_errors_reach_every_waiting_request() -> None:
    def fail(key: str, items: list[int]) -> list[int]:
        raise ValueError("model down")

    async def scenario() -> list[Any]:
        batcher: MicroBatcher[str, int, int] = MicroBatcher(fail, max_rows=10, max_wait_s=0.01)
        try:
            return await asyncio.gather(*[batcher.submit("k", [i]) for i in range(3)], return_exceptions=True)
        finally:
            await batcher.stop()

    assert all(isinstance(r, ValueError) for r in asyncio.run(scenario()))


def test_openapi_schema_is_published_with_the_error_envelope(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    classify = schema["paths"]["/api/v1/classify"]["post"]
    assert {"401", "403", "413", "422", "429", "502", "503"} <= set(classify["responses"])
    assert "HTTPBearer" in json.dumps(schema["components"]["securitySchemes"])
    assert threading.active_count() >= 1


def test_rate_limit_store_down_fails_open_and_readiness_says_so() -> None:
    settings = make_settings(rate_limit="1/minute", rate_limit_storage="redis://127.0.0.1:9/0")
    with TestClient(create_app(settings)) as c:
        codes = [c.post("/api/v1/classify", json={"text": "x"}, headers=auth()).status_code for _ in range(3)]
        assert codes == [200, 200, 200]  # no store, no limit: the API stays up
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["code"] == Code.DEPENDENCY_DOWN
        assert ready.json()["data"]["rate_limit_store"] == "down"


def test_jobs_allow_list_is_checked_before_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # A settings context, not only the variable: a session-wide Prefect test server (integration tests) may be
    # the active context, and it outranks the environment.
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    with (
        temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}),
        TestClient(create_app(make_settings(jobs_deployments=("run_task/nightly-classification",)))) as c,
    ):
        refused = c.post(
            "/api/v1/jobs", json={"deployment": "graph_search/graph-search-cora"}, headers=auth("operator")
        )
        assert refused.status_code == 404 and "is open to the API" in refused.json()["message"]
        down = c.post("/api/v1/jobs", json={"deployment": "run_task/nightly-classification"}, headers=auth("operator"))
        assert down.status_code == 503 and down.json()["code"] == Code.DEPENDENCY_DOWN
        assert c.get("/readyz").json()["data"]["prefect"] == "down"


def test_token_command_issues_a_token_the_api_accepts(tmp_path: Any) -> None:
    import subprocess
    import sys

    key = tmp_path / "private.pem"
    key.write_bytes(SIGNER.private_pem())
    result = subprocess.run(
        [sys.executable, "-m", "openautoglm.serve.tokens", "--key", str(key), "--kid", SIGNER.kid, "--sub", "zoe",
         "--role", "viewer", "--role", "operator", "--ttl", "60"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    token = result.stdout.strip()
    with TestClient(create_app(make_settings())) as c:
        headers = {"Authorization": f"Bearer {token}"}
        assert c.post("/api/v1/classify", json={"text": "x"}, headers=headers).status_code == 200
    import jwt

    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "zoe" and claims["roles"] == ["viewer", "operator"]
    assert claims["exp"] - claims["iat"] == 60


def test_token_command_mints_no_token_the_api_would_refuse(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from openautoglm.serve import tokens

    key = tmp_path / "private.pem"
    key.write_bytes(SIGNER.private_pem())
    command = ["--key", str(key), "--kid", SIGNER.kid, "--sub", "zoe", "--role", "viewer"]
    for ttl in ("86401", "0"):
        with pytest.raises(SystemExit) as refused:
            tokens.main([*command, "--ttl", ttl])
        assert refused.value.code == 2
        assert "OPENAUTOGLM_SERVE_JWT_MAX_LIFETIME_S" in capsys.readouterr().err
    assert tokens.main([*command, "--ttl", "86400"]) == 0
    longest = capsys.readouterr().out.strip()
    monkeypatch.setenv("OPENAUTOGLM_SERVE_JWT_MAX_LIFETIME_S", "600")
    with pytest.raises(SystemExit):
        tokens.main([*command, "--ttl", "3600"])  # the default ttl is over a max of 600
    monkeypatch.delenv("OPENAUTOGLM_SERVE_JWT_MAX_LIFETIME_S")
    with TestClient(create_app(make_settings())) as c:
        response = c.post("/api/v1/classify", json={"text": "x"}, headers={"Authorization": f"Bearer {longest}"})
        assert response.status_code == 200, response.text


def test_no_token_reaches_a_log_line(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn's access log writes the request line with its query string; the app's record factory redacts it
    (and any JWT, bearer value or credential parameter in any other record) before a handler sees it."""
    import logging

    from uvicorn.logging import AccessFormatter

    token = SIGNER.token("alice", ["admin"])
    with TestClient(create_app(make_settings())) as c:
        assert c.get(f"/healthz?token={token}").status_code == 200
    caplog.set_level(logging.INFO)
    # The record uvicorn's HTTP protocol makes for that request (h11_impl / httptools_impl), formatted as uvicorn's
    # default access log formats it.
    access = logging.getLogger("uvicorn.access")
    # uvicorn's logging config (applied by any earlier test that ran a server) stops its access records at its own
    # handler; let them reach caplog's here.
    monkeypatch.setattr(access, "propagate", True)
    monkeypatch.setattr(access, "disabled", False)
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/healthz?token={token}&x=1", "1.1", 200)
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/healthz?access_token=opaque-value", "1.1", 200)
    logging.getLogger("openautoglm.serve").warning("header was Bearer %s", token)
    logging.getLogger("openautoglm.serve").warning(f"an f-string with {token}")
    try:
        raise ValueError(f"a failure naming {token}")
    except ValueError:
        logging.getLogger("openautoglm.serve").exception("failed")
    formatter = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False)
    lines = [
        formatter.format(r) if r.name == "uvicorn.access" else logging.Formatter().format(r) for r in caplog.records
    ]
    assert lines[0] == '127.0.0.1:5000 - "GET /healthz?token=[REDACTED]&x=1 HTTP/1.1" 200 OK', lines[0]
    assert lines[1].endswith('"GET /healthz?access_token=[REDACTED] HTTP/1.1" 200 OK'), lines[1]
    assert len(lines) == 5 and all("[REDACTED]" in line for line in lines), lines
    assert not any(token in line or token.split(".")[1] in line for line in lines), lines
    assert "opaque-value" not in caplog.text and token not in caplog.text


def test_model_timeout_is_504() -> None:
    FakeModel.reset()
    FakeModel.delay_s = 0.5
    try:
        with TestClient(create_app(make_settings(batch_timeout_s=0.1))) as c:
            response = c.post("/api/v1/classify", json={"text": "x"}, headers=auth())
        assert response.status_code == 504 and response.json()["code"] == Code.TIMEOUT
    finally:
        FakeModel.reset()


def test_not_ready_while_models_load(monkeypatch: pytest.MonkeyPatch) -> None:
    from openautoglm.serve.service import ModelService

    release = threading.Event()
    original = ModelService.load

    def slow_load(self: ModelService) -> None:
        release.wait(10)
        original(self)

    monkeypatch.setattr(ModelService, "load", slow_load)
    with TestClient(create_app(make_settings(preload=False))) as c:
        assert c.get("/healthz").status_code == 200  # alive while loading
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["code"] == Code.NOT_READY
        busy = c.post("/api/v1/classify", json={"text": "x"}, headers=auth())
        assert busy.status_code == 503 and busy.json()["code"] == Code.NOT_READY and busy.headers["retry-after"]
        release.set()
        deadline = time.monotonic() + 10
        while c.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.post("/api/v1/classify", json={"text": "x"}, headers=auth()).status_code == 200


def test_templates_are_checked_the_way_the_model_fills_them(client: TestClient) -> None:
    """Only {text} / {text_pair} are replaced; other braces are literal (no str.format: no huge paddings)."""
    for template in ("{text}{text:>400000000}", '返回JSON {"label": "..."}: {text}', "{text} {other}"):
        response = client.post("/api/v1/classify", json={"text": "好评", "prompt_template": template}, headers=auth())
        assert response.status_code == 200, response.text
    assert (
        client.post("/api/v1/classify", json={"text": "x", "prompt_template": "no slot"}, headers=auth()).status_code
        == 422
    )


def test_every_string_of_a_request_is_capped_before_the_model(client: TestClient) -> None:
    long_shot = {"text": "x", "few_shot": [{"text": "y" * 101, "label": "正面"}]}
    response = client.post("/api/v1/classify", json=long_shot, headers=auth())
    assert response.status_code == 422 and response.json()["data"] == {"max_text_chars": 100}
    assert client.post("/api/v1/classify/batch", json={"texts": ["ok", ""]}, headers=auth()).status_code == 422
    assert client.post("/api/v1/ner", json={"text": "x", "entity_types": ["P" * 51]}, headers=auth()).status_code == 422
    assert FakeModel.batches == []


def test_total_characters_per_request_are_capped() -> None:
    FakeModel.reset()
    settings = make_settings(max_request_chars=300, max_body_bytes=100_000)
    with TestClient(create_app(settings)) as c:
        body = {"texts": ["a" * 90] * 4}
        response = c.post("/api/v1/classify/batch", json=body, headers=auth())
        assert response.status_code == 422 and response.json()["data"] == {"max_request_chars": 300}
        verbal = {"text": "x", "verbalizers": {"正面": "v" * 200, "负面": "w" * 200}}
        assert c.post("/api/v1/classify", json=verbal, headers=auth()).status_code == 422
        assert c.post("/api/v1/classify", json={"text": "a" * 90}, headers=auth()).status_code == 200
    assert len(FakeModel.batches) == 1


def test_the_token_is_checked_before_the_body_is_read(client: TestClient) -> None:
    bad_json = client.post("/api/v1/classify", content=b"{not json", headers={"content-type": "application/json"})
    assert bad_json.status_code == 401 and bad_json.json()["code"] == Code.UNAUTHENTICATED
    invalid = client.post("/api/v1/classify", json={"unknown": 1})
    assert invalid.status_code == 401


def test_trailing_slash_is_a_404_envelope_not_a_redirect(client: TestClient) -> None:
    response = client.post("/api/v1/classify/", json={"text": "x"}, headers=auth(), follow_redirects=False)
    assert response.status_code == 404 and response.json()["code"] == Code.NOT_FOUND


def test_oversized_headers_are_a_431_envelope(client: TestClient) -> None:
    response = client.get("/healthz", headers={"x-padding": "p" * 20_000})
    assert response.status_code == 431 and response.json()["code"] == Code.HEADERS_TOO_LARGE


def test_stages_route_lists_the_catalogue_with_ports_and_schemas(client: TestClient) -> None:
    response = client.get("/api/v1/stages", headers=auth("viewer"))
    assert response.status_code == 200, response.text
    stages = {s["name"]: s for s in response.json()["data"]["stages"]}
    assert {"load", "clean", "validate", "infer", "evaluate", "write", "graph-search"} <= set(stages)
    assert stages["evaluate"]["inputs"][0] == {
        "name": "predictions",
        "type": "Predictions",
        "description": "The predictions to score",
        "required": True,
    }
    assert stages["clean"]["params_schema"]["properties"]["truncate_at"]["description"]
    assert client.get("/api/v1/stages").status_code == 401
