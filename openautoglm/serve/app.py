"""The FastAPI app factory: ``create_app(settings)``; ``uvicorn --factory openautoglm.serve.app:create_app``.

It only assembles: the services (models, jobs, workflows, rate limits), the error handlers that keep every answer
in the envelope, the middleware (:mod:`~openautoglm.serve.middleware`) and one ``APIRouter`` per module
(``routes_ops``, ``routes_nlp``, ``routes_workflows``, ``routes_jobs``). A new REST route goes in the router of its
module (a new task type is one row of ``routes_nlp.TASK_ROUTES``).

Order of checks on a protected route: body size (before the body is read) -> bearer token (exactly one
``Authorization`` header) -> the JSON body's encoding and nesting depth (before it is parsed) -> role -> rate limit
-> body validation and the size caps -> the model (micro-batched). Every response is the envelope (see
:mod:`openautoglm.serve.envelope`), except ``/metrics`` (Prometheus text) and the OpenAPI schema. No log line of the
process holds a token (:mod:`openautoglm.serve.redact`).
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from openautoglm import __version__
from openautoglm.adapters.workflow_store import WorkflowStore
from openautoglm.core.errors import OpenAutoGLMError
from openautoglm.serve.auth import Authenticator, KeySet
from openautoglm.serve.confine import JobPolicy, SqlConnection
from openautoglm.serve.envelope import ApiError, Code, error_response
from openautoglm.serve.guard import make_guard
from openautoglm.serve.jobs import JobsService
from openautoglm.serve.metrics import Metrics
from openautoglm.serve.middleware import BodyLimitMiddleware, GateMiddleware, ObserveMiddleware
from openautoglm.serve.ratelimit import RateLimiter
from openautoglm.serve.redact import install_log_redaction
from openautoglm.serve.routes_annotation import annotation_router
from openautoglm.serve.routes_jobs import jobs_router
from openautoglm.serve.routes_nlp import RouteContext, nlp_router
from openautoglm.serve.routes_ops import ops_router
from openautoglm.serve.routes_workflows import workflow_router
from openautoglm.serve.service import ModelService
from openautoglm.serve.settings import ServeSettings
from openautoglm.serve.ui import mount_ui

log = logging.getLogger(__name__)


def _validation_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in error.errors()[:20]
    ]


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The API. Reads :class:`ServeSettings` from the environment unless given."""
    settings = settings or ServeSettings()
    install_log_redaction()  # before uvicorn's first access log line: a ?token= in a request line is never written
    metrics = Metrics()
    keys = KeySet.from_config(
        settings.jwt_keys.get_secret_value() if settings.jwt_keys else None,
        settings.jwt_keys_dir,
        settings.jwt_algorithms,
    )
    if not len(keys):
        log.warning("no JWT keys configured (OPENAUTOGLM_SERVE_JWT_KEYS[_DIR]): every protected route answers 401")
    authenticator = Authenticator(
        keys,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        leeway_s=settings.jwt_leeway_s,
        max_lifetime_s=settings.jwt_max_lifetime_s,
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
        '`{"code": 0, "data": ..., "message": "success"}` (errors: the code table in docs/deployment/serve.md).',
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
        first = f": {'.'.join(errors[0]['loc'])}: {errors[0]['msg']}" if errors else ""
        return error_response(Code.INVALID, f"the request does not validate{first}", data={"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:  # FastAPI's only 400: a body its JSON parser raised on (code 40000)
            return error_response(Code.BAD_JSON, "the body is not valid JSON (it could not be parsed)")
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

    # --- routes: one router per module; the gate names refused requests' routes from them ------------------
    workflows = WorkflowStore(settings.workflows_store_url)
    app.state.workflows = workflows
    guard = make_guard(authenticator, limiter, metrics)
    nlp = RouteContext(settings, guard, service.predict, lambda task: service.specs[task].model)
    routers = (
        ops_router(settings, guard, service, limiter, jobs, metrics, authenticator),
        nlp_router(nlp),
        workflow_router(settings, guard, jobs, workflows, metrics),
        jobs_router(guard, jobs, metrics),
        annotation_router(guard),
    )
    for router in routers:
        app.include_router(router)

    # --- middleware (the last added runs first) --------------------------------------------------------
    app.add_middleware(
        GateMiddleware, authenticator=authenticator, routes=lambda: [r for router in routers for r in router.routes]
    )
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes, max_depth=settings.max_json_depth)
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

    mount_ui(app)
    return app
