"""The API's ASGI middleware: body size before the body is read, the bearer token before any route, and request
metrics with security headers on every response."""

import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openautoglm.serve.auth import Authenticator
from openautoglm.serve.envelope import ApiError, Code, error_body
from openautoglm.serve.metrics import Metrics


class BodyLimitMiddleware:
    """Refuses bodies over ``limit`` bytes with 413: at once when ``Content-Length`` says so, else as soon as
    the streamed body passes the limit (chunked uploads). Nothing downstream, least of all a model, sees it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

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
                await _send_413(send, self.limit)
                return
        seen = 0
        started = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # Answer 413 now; the app sees a client that went away and whatever it answers is dropped.
                    refused = True
                    if not started:
                        await _send_413(send, self.limit)
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)


async def _send_413(send: Send, limit: int) -> None:
    await _send_error(send, Code.BODY_TOO_LARGE, f"request body larger than {limit} bytes")


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
            raw = dict(scope["headers"]).get(b"authorization")
            try:
                principal = self.authenticator.verify(raw.decode("latin-1") if raw is not None else None)
            except ApiError as error:
                self._name_route(scope)
                await _send_error(send, error.code, error.message, error.headers)
                return
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


async def _send_error(send: Send, code: Code, message: str, headers: dict[str, str] | None = None) -> None:
    body = error_body(code, message)
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
