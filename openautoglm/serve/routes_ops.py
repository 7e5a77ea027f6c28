"""Operations routes: liveness, readiness, Prometheus metrics and the circuit breaker around the GLM upstream.

No ``from __future__ import annotations`` here: FastAPI reads the endpoints' types from their annotations.
"""

import asyncio
import logging
import os
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from openautoglm.serve import schemas as s
from openautoglm.serve.auth import Authenticator, Principal, authorize
from openautoglm.serve.breaker import open_for
from openautoglm.serve.envelope import Code, Envelope, error_response, error_responses, ok
from openautoglm.serve.guard import Guard
from openautoglm.serve.jobs import JobsService
from openautoglm.serve.metrics import Metrics
from openautoglm.serve.ratelimit import RateLimiter
from openautoglm.serve.service import ModelService
from openautoglm.serve.settings import ServeSettings

log = logging.getLogger(__name__)


def ops_router(
    settings: ServeSettings,
    guard: Guard,
    service: ModelService,
    limiter: RateLimiter,
    jobs: JobsService,
    metrics: Metrics,
    authenticator: Authenticator,
) -> APIRouter:
    """``/healthz``, ``/readyz``, ``/metrics`` and ``/api/v1/admin/circuit[/reset]``."""
    router = APIRouter()

    @router.get("/healthz", response_model=Envelope[s.Health], tags=["operations"])
    async def healthz() -> dict[str, Any]:
        """Liveness: the process answers."""
        return ok({"status": "ok"})

    @router.get(
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
            "model_versions": service.versions(),
            "waiting": dict(service.waiting),
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

    @router.get(
        "/metrics", tags=["operations"], response_class=Response, responses={200: {"content": {"text/plain": {}}}}
    )
    async def metrics_endpoint(request: Request) -> Response:
        """Prometheus metrics (text format, not the envelope)."""
        if not settings.metrics_public:
            principal = authenticator.verify_headers(request.headers.raw)
            authorize(principal, "metrics")
        metrics.set_circuit("glm", service.breaker.current_state)
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @router.get(
        "/api/v1/admin/circuit",
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

    @router.post(
        "/api/v1/admin/circuit/reset",
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

    return router
