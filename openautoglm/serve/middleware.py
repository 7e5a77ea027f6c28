"""The API's ASGI middleware: body size before the body is read (and a JSON body's encoding and nesting before
it is parsed), the bearer token before any route, and request metrics with security headers on every response."""

import re
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openautoglm.serve.auth import Authenticator
from openautoglm.serve.envelope import ApiError, Code, error_body
from openautoglm.serve.metrics import Metrics


class BodyLimitMiddleware:
    """Refuses bodies over ``limit`` bytes with 413: at once when ``Content-Length`` says so, else as soon as
    the streamed body passes the limit (chunked uploads). Nothing downstream, least of all a model, sees it.

    A body FastAPI will parse as JSON (``Content-Type`` JSON or none) is checked once it has all arrived, before
    any parser sees it (:func:`json_body_problem`): not UTF-8, or arrays and objects nested deeper than
    ``max_depth``, is 400. The body is read only when a route reads it, so after the token has been checked.
    """

    def __init__(self, app: ASGIApp, limit: int, max_depth: int = 64) -> None:
        self.app = app
        self.limit = limit
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.limit
            except ValueError:
                too_big = False
            if too_big:
                await _send_error(send, Code.BODY_TOO_LARGE, _too_large(self.limit))
                return
        as_json = _parsed_as_json(scope["headers"])
        chunks: list[bytes] = []
        seen = 0
        started = False
        refused = False

        async def refuse(code: Code, message: str) -> Message:
            # Answer now; the app sees a client that went away and whatever it answers is dropped.
            nonlocal refused
            refused = True
            if not started:
                await _send_error(send, code, message)
            return {"type": "http.disconnect"}

        async def limited_receive() -> Message:
            nonlocal seen
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > self.limit:
                    return await refuse(Code.BODY_TOO_LARGE, _too_large(self.limit))
                if as_json:
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        problem = json_body_problem(b"".join(chunks), self.max_depth)
                        chunks.clear()
                        if problem is not None:
                            return await refuse(Code.BAD_JSON, problem)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)


def _too_large(limit: int) -> str:
    return f"request body larger than {limit} bytes"


def _parsed_as_json(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether FastAPI will parse this request's body as JSON: no ``Content-Type``, ``application/json`` or
    ``application/*+json`` (its own rule, on the first ``Content-Type`` header as Starlette reads it)."""
    value = next((v for k, v in headers if k == b"content-type"), b"")
    media = value.partition(b";")[0].strip().lower()
    return not media or media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


#: A JSON string, escapes included (the unrolled ``"(?:[^"\\]|\\.)*"``: no backtracking on long strings).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: ``bytes.translate`` arguments: every byte but the four brackets deleted, openers to "(", closers to ")".
_BRACKETS = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_body_problem(body: bytes, max_depth: int) -> str | None:
    """Why a JSON body must not be parsed, or None: it is not UTF-8 (RFC 8259 8.1), or its arrays and objects nest
    deeper than ``max_depth`` (a parser, validator or flow would recurse once per level; 100,000 levels fit in a
    few hundred kB).

    Linear in the body and in C but for a few loops: brackets inside strings are dropped with the strings, the rest
    become ``(``/``)``, and each of at most ``max_depth`` rounds deletes every innermost ``()``; a valid body of
    depth d is empty after d rounds. What is left after ``max_depth`` rounds is nested too deep, or its brackets do
    not pair up (invalid JSON, which a parser could still recurse into: ``[[[[...`` never closed).
    """
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"the body is not valid JSON: not UTF-8 (byte {error.start})"
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return None  # fewer openers than levels allowed, strings included
    brackets = _JSON_STRING.sub(b"", body).translate(_BRACKETS, _NOT_BRACKETS)
    too_deep = f"the JSON body nests arrays and objects deeper than {max_depth} levels (or leaves brackets unpaired)"
    if b"(" * (max_depth + 1) in brackets:
        return too_deep
    for _ in range(max_depth):
        if not brackets:
            return None
        brackets = brackets.replace(b"()", b"")
    return too_deep if brackets else None


#: Request headers above this many bytes are answered 431 (uvicorn itself cuts off at 4x this, see ``serve``).
MAX_HEADER_BYTES = 16_384
#: Paths whose every route needs a bearer token (see :data:`openautoglm.serve.auth.ROUTE_ROLES`).
PROTECTED_PREFIX = "/api/v1/"


class GateMiddleware:
    """Before a body byte is read: headers over :data:`MAX_HEADER_BYTES` are 431, and a route under ``/api/v1/``
    without a valid bearer token is 401. The principal is left in the request state for the route's role check,
    so a caller without a token learns nothing about the body's shape."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator, routes: Callable[[], list[Any]]) -> None:
        self.app = app
        self.authenticator = authenticator
        self.routes = routes

    def _name_route(self, scope: Scope) -> None:
        """Set the matched route on a refused request, so its metrics carry the route template."""
        from starlette.routing import Match

        for route in self.routes():
            if route.matches(scope)[0] is not Match.NONE:
                scope["route"] = route
                return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if sum(len(k) + len(v) + 4 for k, v in scope["headers"]) > MAX_HEADER_BYTES:
            await _send_error(send, Code.HEADERS_TOO_LARGE, f"request headers larger than {MAX_HEADER_BYTES} bytes")
            return
        if scope.get("path", "").startswith(PROTECTED_PREFIX) and scope.get("method") != "OPTIONS":
            try:
                principal = self.authenticator.verify_headers(scope["headers"])
            except ApiError as error:
                self._name_route(scope)
                await _send_error(send, error.code, error.message, error.headers, error.data)
                return
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


async def _send_error(
    send: Send, code: Code, message: str, headers: dict[str, str] | None = None, data: dict[str, Any] | None = None
) -> None:
    body = error_body(code, message, data)
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": code.http_status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ObserveMiddleware:
    """Request count and latency by route template, method and status; security headers on every response."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                if not any(k.lower() == b"cache-control" for k, _ in headers):  # the canvas's bundle sets its own
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            labels = {"route": template, "method": scope.get("method", ""), "status": str(status)}
            self.metrics.requests.labels(**labels).inc()
            self.metrics.latency.labels(**labels).observe(time.perf_counter() - started)
