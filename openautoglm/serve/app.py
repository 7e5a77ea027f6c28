"""The FastAPI app factory: ``create_app(settings)``; ``uvicorn --factory openautoglm.serve.app:create_app``.

Order of checks on a protected route: body size (before the body is read) -> bearer token -> role -> rate limit
-> body validation and the size caps -> the model (micro-batched). Every response is the envelope (see
:mod:`openautoglm.serve.envelope`), except ``/metrics`` (Prometheus text) and the OpenAPI schema.
"""

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openautoglm import __version__
from openautoglm.core.errors import OpenAutoGLMError
from openautoglm.core.nlp.types import RowResult, TaskConfig
from openautoglm.serve import schemas as s
from openautoglm.serve.auth import Authenticator, KeySet, Principal, authorize
from openautoglm.serve.breaker import open_for
from openautoglm.serve.confine import JobPolicy, SqlConnection
from openautoglm.serve.envelope import (
    ApiError,
    Code,
    Envelope,
    error_body,
    error_response,
    error_responses,
    ok,
)
from openautoglm.serve.jobs import JobsService
from openautoglm.serve.metrics import Metrics
from openautoglm.serve.ratelimit import RateLimiter
from openautoglm.serve.routes_nlp import PUBLIC_ERRORS, RouteContext, add_nlp_routes
from openautoglm.serve.routes_workflows import add_workflow_routes
from openautoglm.serve.service import Item, ModelService, Task
from openautoglm.serve.settings import ServeSettings
from openautoglm.serve.ui import mount_ui

log = logging.getLogger(__name__)


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


def _validation_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in error.errors()[:20]
    ]


def _characters(value: Any) -> int:
    """Characters of every string (keys included) in a dumped request."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_characters(k) + _characters(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return sum(_characters(v) for v in value)
    return 0


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The API. Reads :class:`ServeSettings` from the environment unless given."""
    settings = settings or ServeSettings()
    metrics = Metrics()
    keys = KeySet.from_config(
        settings.jwt_keys.get_secret_value() if settings.jwt_keys else None,
        settings.jwt_keys_dir,
        settings.jwt_algorithms,
    )
    if not len(keys):
        log.warning("no JWT keys configured (OPENAUTOGLM_SERVE_JWT_KEYS[_DIR]): every protected route answers 401")
    authenticator = Authenticator(
        keys, audience=settings.jwt_audience, issuer=settings.jwt_issuer, leeway_s=settings.jwt_leeway_s
    )
    limiter = RateLimiter(settings.rate_limit, settings.rate_limit_storage, settings.rate_limit_namespace)
    service = ModelService(settings, metrics)
    jobs = JobsService(
        settings.jobs_deployments,
        JobPolicy(
            data_roots=tuple(settings.data_roots),
            connections={k: SqlConnection(v.url, v.password_env) for k, v in settings.sql_connections.items()},
        ),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        loading = asyncio.create_task(asyncio.to_thread(service.load))
        if settings.preload:
            await loading  # uvicorn accepts connections only once the models are in memory
        yield
        if not loading.done():
            loading.cancel()
        await service.stop()

    app = FastAPI(
        title="Open-AutoGLM API",
        version=__version__,
        description="Text classification, NER and semantic matching; Prefect jobs. Every response is "
        '`{"code": 0, "data": ..., "message": "success"}` (errors: the code table in the README).',
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        redirect_slashes=False,  # a 307 to the slash-less path is no envelope; an unknown path is a 404 envelope
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.service = service
    app.state.limiter = limiter

    # --- errors: always the envelope, never a traceback -------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.code, error.message, data=error.data, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(error)
        if any(e["type"] == "json_invalid" for e in errors):
            return error_response(Code.BAD_JSON, "the body is not valid JSON", data={"errors": errors})
        return error_response(Code.INVALID, "the request does not validate", data={"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: Code.NOT_FOUND, 405: Code.METHOD_NOT_ALLOWED, 413: Code.BODY_TOO_LARGE}.get(error.status_code)
        if code is None:
            code = Code.INVALID if error.status_code < 500 else Code.INTERNAL
        return error_response(code, str(error.detail) if error.status_code < 500 else "internal error")

    @app.exception_handler(OpenAutoGLMError)
    async def _ours(request: Request, error: OpenAutoGLMError) -> JSONResponse:
        log.warning("request failed: %s", error.message)
        return error_response(Code.INVALID, error.message)

    @app.exception_handler(Exception)
    async def _internal(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(Code.INTERNAL, "internal error")

    # --- middleware (the last added runs first) --------------------------------------------------------
    app.add_middleware(GateMiddleware, authenticator=authenticator, routes=lambda: app.router.routes)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=False,
        )
    app.add_middleware(ObserveMiddleware, metrics=metrics)

    # --- auth ------------------------------------------------------------------------------------------
    bearer = HTTPBearer(auto_error=False, bearerFormat="JWT", description="JWT signed by a key the server knows")

    def guard(route: str) -> Callable[..., Awaitable[Principal]]:
        async def dependency(
            request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
        ) -> Principal:
            principal = getattr(request.state, "principal", None)  # verified by GateMiddleware
            if principal is None:
                principal = authenticator.verify(request.headers.get("authorization"))
            authorize(principal, route)
            try:
                await limiter.hit(principal.owner)
            except ApiError:
                metrics.rate_limited.labels(route=route).inc()
                raise
            request.state.principal = principal
            return principal

        return dependency

    def caps(count: int, texts: list[str], body: Any = None) -> None:
        """The configured caps, before any model call: items, the longest text (few-shot texts included) and the
        characters of every string in the request together."""
        if count > settings.max_batch_items:
            raise ApiError(
                Code.BATCH_TOO_LARGE,
                f"{count} items in one request; at most {settings.max_batch_items}",
                data={"max_batch_items": settings.max_batch_items},
            )
        shots = [f.text for f in getattr(body, "few_shot", None) or ()]
        longest = max((len(t) for t in (*texts, *shots)), default=0)
        if longest > settings.max_text_chars:
            raise ApiError(
                Code.INVALID,
                f"a text has {longest} characters; at most {settings.max_text_chars}",
                data={"max_text_chars": settings.max_text_chars},
            )
        total = sum(len(t) for t in texts) + (
            _characters(body.model_dump(exclude={"text", "texts", "pairs"})) if body else 0
        )
        if total > settings.max_request_chars:
            raise ApiError(
                Code.INVALID,
                f"the request holds {total} characters; at most {settings.max_request_chars}",
                data={"max_request_chars": settings.max_request_chars},
            )

    async def predict(task: Task, config: TaskConfig, items: list[Item]) -> list[RowResult]:
        return await service.predict(task, config, items)

    # --- routes ----------------------------------------------------------------------------------------
    @app.get("/healthz", response_model=Envelope[s.Health], tags=["operations"])
    async def healthz() -> dict[str, Any]:
        """Liveness: the process answers."""
        return ok({"status": "ok"})

    @app.get(
        "/readyz",
        response_model=Envelope[s.Readiness],
        responses=error_responses(503),
        tags=["operations"],
    )
    async def readyz() -> Any:
        """Readiness: models loaded and the rate-limit store reachable (Prefect is reported, not required)."""
        store_ok = await limiter.healthy()
        data = {
            "ready": service.ready and store_ok,
            "models": {task: spec.model for task, spec in service.specs.items()},
            "models_loaded": service.ready,
            "load_error": service.load_error,
            "rate_limit_store": ("ok" if store_ok else "down") + ("" if limiter.shared else " (memory)"),
            "prefect": None,
        }
        if os.environ.get("PREFECT_API_URL"):  # reported for the job routes; not a readiness condition
            try:
                data["prefect"] = "ok" if await asyncio.wait_for(jobs.healthy(), 2.0) else "down"
            except TimeoutError:
                data["prefect"] = "down"
        if not data["ready"]:
            code = Code.NOT_READY if not service.ready else Code.DEPENDENCY_DOWN
            return error_response(code, "not ready", data=data, headers={"Retry-After": "2"})
        return ok(data)

    @app.get("/metrics", tags=["operations"], response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    async def metrics_endpoint(request: Request) -> Response:
        """Prometheus metrics (text format, not the envelope)."""
        if not settings.metrics_public:
            principal = authenticator.verify(request.headers.get("authorization"))
            authorize(principal, "metrics")
        metrics.set_circuit("glm", service.breaker.current_state)
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    v1 = "/api/v1"
    add_nlp_routes(app, RouteContext(settings, guard, caps, predict, lambda task: service.specs[task].model))
    add_workflow_routes(app, settings, guard, jobs)

    @app.post(
        f"{v1}/jobs",
        response_model=Envelope[s.Job],
        responses=error_responses(*PUBLIC_ERRORS, 404, 503),
        tags=["jobs"],
        summary="Trigger a Prefect deployment run",
    )
    async def jobs_create(
        body: s.JobRequest, principal: Annotated[Principal, Depends(guard("jobs_create"))]
    ) -> dict[str, Any]:
        job = await jobs.create(principal, body.deployment, body.parameters)
        metrics.jobs.labels(deployment=body.deployment).inc()
        return ok(job)

    @app.get(
        f"{v1}/stages",
        response_model=Envelope[s.StageList],
        responses=error_responses(401, 403, 429, 500),
        tags=["jobs"],
        summary="The stage catalogue: ports and parameter JSON Schemas (what workflow graphs are made of)",
    )
    async def stages(principal: Annotated[Principal, Depends(guard("stages"))]) -> dict[str, Any]:
        from starlette.concurrency import run_in_threadpool

        from openautoglm.stages import describe_catalogue

        return ok({"stages": await run_in_threadpool(describe_catalogue)})  # the first call imports the stages

    @app.get(
        f"{v1}/jobs",
        response_model=Envelope[s.JobList],
        responses=error_responses(401, 403, 429, 500, 503),
        tags=["jobs"],
        summary="Your jobs, newest first",
    )
    async def jobs_list(principal: Annotated[Principal, Depends(guard("jobs_list"))]) -> dict[str, Any]:
        return ok({"jobs": await jobs.list(principal)})

    @app.get(
        f"{v1}/jobs/{{job_id}}",
        response_model=Envelope[s.Job],
        responses=error_responses(401, 403, 404, 429, 500, 503),
        tags=["jobs"],
        summary="A job's state and results",
    )
    async def jobs_read(job_id: str, principal: Annotated[Principal, Depends(guard("jobs_read"))]) -> dict[str, Any]:
        return ok(await jobs.read(principal, job_id))

    @app.get(
        f"{v1}/admin/circuit",
        response_model=Envelope[s.Circuit],
        responses=error_responses(401, 403, 429, 500),
        tags=["operations"],
        summary="State of the circuit breaker around the GLM upstream",
    )
    async def admin_circuit(principal: Annotated[Principal, Depends(guard("admin_circuit"))]) -> dict[str, Any]:
        breaker = service.breaker
        return ok(
            {
                "name": breaker.name or "glm",
                "state": breaker.current_state,
                "failures": breaker.fail_counter,
                "open_for_s": open_for(breaker),
            }
        )

    @app.post(
        f"{v1}/admin/circuit/reset",
        response_model=Envelope[s.Circuit],
        responses=error_responses(401, 403, 429, 500),
        tags=["operations"],
        summary="Close the circuit breaker",
    )
    async def admin_circuit_reset(
        principal: Annotated[Principal, Depends(guard("admin_circuit_reset"))],
    ) -> dict[str, Any]:
        breaker = service.breaker
        breaker.close()
        log.warning("circuit closed by %s", principal.sub)
        return ok({"name": breaker.name or "glm", "state": breaker.current_state, "failures": 0, "open_for_s": None})

    mount_ui(app)
    return app
