"""A local HTTP server that speaks the Zhipu chat-completions wire format, for tests and benchmarks.

It is driven through the real zhipuai SDK (``ZhipuAI(base_url=server.base_url)``) and can inject what the real
service does under load: latency, a per-account concurrency cap (HTTP 429, code 1302), platform overload (503,
1305), internal errors (500), bad keys (401, 1000), answers that are not JSON or use a label outside the set.
It counts every request so tests can prove a rerun made no call.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[list[dict[str, str]]], str]

_LABELS = re.compile(r"类别必须是以下之一: (.+?)。")
_TYPES = re.compile(r"类型必须是以下之一: (.+?)（")


@dataclass
class Fault:
    """Injected failure rates (0..1) and fixed behaviours.

    Attributes:
        throttle: Share of calls answered 429/1302 (on top of the concurrency cap).
        overload: Share answered 503/1305.
        internal: Share answered 500.
        broken_json: Share of answers that are not JSON (first attempts only, so a repair can succeed).
        wrong_label: Share of answers with a label outside the set (first attempts only).
        sensitive: Share answered with ``finish_reason: "sensitive"``.
    """

    throttle: float = 0.0
    overload: float = 0.0
    internal: float = 0.0
    broken_json: float = 0.0
    wrong_label: float = 0.0
    sensitive: float = 0.0


def _last_user(messages: list[dict[str, str]]) -> str:
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


def default_responder(messages: list[dict[str, str]]) -> str:
    """A deterministic stand-in model that always answers in the asked format.

    Classification: the first label (in the system message's label list) that appears in the text, else a
    label chosen by a hash of the text. NER: ``{"entities": []}``. Matching: a score from character overlap.
    """
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    user = _last_user(messages)
    labels = _LABELS.search(system)
    if labels:
        options = labels.group(1).split("、")
        text = user.split(":", 1)[-1]
        chosen = next((o for o in options if o in text), options[sum(map(ord, text)) % len(options)])
        return json.dumps({"label": chosen}, ensure_ascii=False)
    if _TYPES.search(system):
        return json.dumps({"entities": []})
    if '"score"' in system:
        lines = user.splitlines()
        a, b = (lines[-2].split(":", 1)[-1], lines[-1].split(":", 1)[-1]) if len(lines) >= 2 else (user, user)
        overlap = len(set(a) & set(b)) / max(1, len(set(a) | set(b)))
        return json.dumps({"score": round(overlap, 3)})
    return "{}"


@dataclass
class FakeZhipuServer:
    """The server. Use as a context manager; ``base_url`` goes to ``ZhipuAI(base_url=...)``.

    Args:
        api_key: The only key accepted.
        latency_s: Delay of every answer.
        max_concurrency: Requests in flight above this get 429/1302.
        fault: Injected failure rates.
        responder: Maps a request's messages to the answer text.
        seed: Seed of the fault injection.
    """

    api_key: str = "test-id.test-secret"
    latency_s: float = 0.0
    max_concurrency: int = 1000
    fault: Fault = field(default_factory=Fault)
    responder: Responder = default_responder
    seed: int = 0
    models: tuple[str, ...] = ("glm-4", "glm-4-flash", "glm-4-plus", "glm-4-air", "glm-4-airx", "glm-4-long")

    def __post_init__(self) -> None:
        self.requests = 0
        self.answered = 0
        self.statuses: Counter[int] = Counter()
        self.codes: Counter[str] = Counter()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/api/paas/v4/"

    def reset_counts(self) -> None:
        with self._lock:
            self.requests = self.answered = 0
            self.statuses.clear()
            self.codes.clear()
            self.bodies.clear()
            self.headers.clear()
            self.peak_in_flight = 0

    def start(self) -> FakeZhipuServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/stats"):
                    self._send(200, server.stats())
                else:
                    self._send(404, {"error": {"code": "404", "message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, body = server.handle(self.path, dict(self.headers.items()), raw)
                self._send(status, body)

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                if status in (429, 503):
                    self.send_header("x-should-retry", "true")
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-zhipu", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeZhipuServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "answered": self.answered,
                "statuses": dict(self.statuses),
                "codes": dict(self.codes),
                "peak_in_flight": self.peak_in_flight,
            }

    def _error(self, status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.statuses[status] += 1
            self.codes[code] += 1
        return status, {"error": {"code": code, "message": message}}

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one POST (public so it can be unit-tested without sockets)."""
        with self._lock:
            self.requests += 1
        if not path.rstrip("/").endswith("/api/paas/v4/chat/completions"):
            return self._error(404, "404", f"no route {path}")
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if auth != f"Bearer {self.api_key}":
            return self._error(401, "1000", "身份验证失败")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return self._error(400, "1214", "请求体不是合法的JSON")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return self._error(400, "1214", "messages 参数非法")
        if body.get("model") not in self.models:
            return self._error(400, "1211", f"模型不存在: {body.get('model')}")
        with self._lock:
            self.bodies.append(body)
            self.headers.append(dict(headers))
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            over_cap = self.in_flight > self.max_concurrency
            roll = self._rng.random()
            answer_roll = self._rng.random()
        try:
            if over_cap:
                return self._error(429, "1302", "您当前使用该API的并发数过高，请降低并发")
            f = self.fault
            if roll < f.throttle:
                return self._error(429, "1302", "您当前使用该API的并发数过高，请降低并发")
            if roll < f.throttle + f.overload:
                return self._error(503, "1305", "当前API请求过多，请稍后重试")
            if roll < f.throttle + f.overload + f.internal:
                return self._error(500, "500", "内部错误")
            if self.latency_s:
                time.sleep(self.latency_s)
            messages = body["messages"]
            first_attempt = sum(m["role"] == "assistant" for m in messages) == 0 or not _is_repair(messages)
            finish = "stop"
            text = self.responder(messages)
            if first_attempt and answer_roll < f.broken_json:
                text = "好的，我认为这是正面的"
            elif first_attempt and answer_roll < f.broken_json + f.wrong_label:
                text = json.dumps({"label": "不确定"}, ensure_ascii=False)
            elif answer_roll > 1.0 - f.sensitive:
                text, finish = "", "sensitive"
            prompt_tokens = sum(len(m["content"]) for m in messages)
            with self._lock:
                self.statuses[200] += 1
                self.answered += 1
            return 200, {
                "id": uuid.uuid4().hex,
                "created": int(time.time()),
                "model": body["model"],
                "request_id": body.get("request_id") or uuid.uuid4().hex,
                "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": text}}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(text),
                    "total_tokens": prompt_tokens + len(text),
                },
            }
        finally:
            with self._lock:
                self.in_flight -= 1


def _is_repair(messages: list[dict[str, str]]) -> bool:
    return "上面的回答无法使用" in _last_user(messages)
