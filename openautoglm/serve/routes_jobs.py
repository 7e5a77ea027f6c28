"""Job routes: trigger a Prefect deployment run (confined, see :mod:`openautoglm.serve.confine`), list and read
your jobs, and the stage catalogue that workflow graphs are made of.

No ``from __future__ import annotations`` here: FastAPI reads the endpoints' types from their annotations.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from openautoglm.serve import schemas as s
from openautoglm.serve.auth import Principal
from openautoglm.serve.envelope import Envelope, error_responses, ok
from openautoglm.serve.guard import Guard
from openautoglm.serve.jobs import JobsService
from openautoglm.serve.metrics import Metrics
from openautoglm.serve.routes_nlp import PUBLIC_ERRORS


def jobs_router(guard: Guard, jobs: JobsService, metrics: Metrics, prefix: str = "/api/v1") -> APIRouter:
    """``POST/GET /jobs``, ``GET /jobs/{job_id}`` and ``GET /stages``."""
    router = APIRouter(prefix=prefix)

    @router.post(
        "/jobs",
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

    @router.get(
        "/stages",
        response_model=Envelope[s.StageList],
        responses=error_responses(401, 403, 429, 500),
        tags=["jobs"],
        summary="The stage catalogue: ports and parameter JSON Schemas (what workflow graphs are made of)",
    )
    async def stages(principal: Annotated[Principal, Depends(guard("stages"))]) -> dict[str, Any]:
        from starlette.concurrency import run_in_threadpool

        from openautoglm.stages import describe_catalogue

        return ok({"stages": await run_in_threadpool(describe_catalogue)})  # the first call imports the stages

    @router.get(
        "/jobs",
        response_model=Envelope[s.JobList],
        responses=error_responses(401, 403, 429, 500, 503),
        tags=["jobs"],
        summary="Your jobs, newest first",
    )
    async def jobs_list(principal: Annotated[Principal, Depends(guard("jobs_list"))]) -> dict[str, Any]:
        return ok({"jobs": await jobs.list(principal)})

    @router.get(
        "/jobs/{job_id}",
        response_model=Envelope[s.Job],
        responses=error_responses(401, 403, 404, 429, 500, 503),
        tags=["jobs"],
        summary="A job's state and results",
    )
    async def jobs_read(job_id: str, principal: Annotated[Principal, Depends(guard("jobs_read"))]) -> dict[str, Any]:
        return ok(await jobs.read(principal, job_id))

    return router
