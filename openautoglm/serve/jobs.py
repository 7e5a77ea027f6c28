"""``/api/v1/jobs``: trigger a Prefect deployment run, read its state and results.

A job is a Prefect flow run created from a deployment (the same deployments ``openautoglm deploy`` registers).
Its creator is recorded as a tag ``openautoglm-owner:<hash of iss and sub>`` on the flow run, so ownership
survives restarts and holds across API replicas: a job of another subject is answered 404, as if it did not
exist (admins may read and list every job). Results are the run's artifacts (tables, links, markdown) once it
finishes; artifacts that carry input rows are shown only when every file the run read lies under the data roots
(or to admins). What a caller may ask of a worker is :mod:`openautoglm.serve.confine`'s policy.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

import httpx

from openautoglm.serve import confine
from openautoglm.serve.auth import Principal
from openautoglm.serve.envelope import ApiError, Code

log = logging.getLogger(__name__)

OWNER_TAG = "openautoglm-owner:"
MAX_ARTIFACT_CHARS = 4000


def _down(error: Exception) -> ApiError:
    log.warning("Prefect server unreachable: %s", type(error).__name__)
    return ApiError(Code.DEPENDENCY_DOWN, "the Prefect server is unreachable", headers={"Retry-After": "5"})


def _not_found() -> ApiError:
    return ApiError(Code.NOT_FOUND, "no such job")


def _job(run: Any, deployment: str | None = None) -> dict[str, Any]:
    state = run.state
    return {
        "id": str(run.id),
        "name": run.name,
        "deployment": deployment,
        "deployment_id": str(run.deployment_id) if run.deployment_id else None,
        "state": state.type.value if state is not None else None,
        "state_name": state.name if state is not None else None,
        "message": state.message if state is not None else None,
        "created": run.created.isoformat() if run.created else None,
        "start_time": run.start_time.isoformat() if run.start_time else None,
        "end_time": run.end_time.isoformat() if run.end_time else None,
        "parameters": run.parameters,
        "results": [],
    }


class JobsService:
    """Prefect client calls for the job routes (``PREFECT_API_URL`` says which server)."""

    def __init__(self, allowed: tuple[str, ...] = (), policy: confine.JobPolicy | None = None) -> None:
        self.allowed = frozenset(allowed)
        self.policy = policy or confine.JobPolicy()

    async def create(self, principal: Principal, deployment: str, parameters: dict[str, Any]) -> dict[str, Any]:
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

        if self.allowed and deployment not in self.allowed:
            raise ApiError(Code.NOT_FOUND, f"no deployment '{deployment}' is open to the API")
        try:
            async with get_client() as client:
                try:
                    found = await client.read_deployment_by_name(deployment)
                except ObjectNotFound:
                    raise ApiError(Code.NOT_FOUND, f"no deployment named '{deployment}'") from None
                flow_name = deployment.partition("/")[0]
                parameters = await asyncio.to_thread(
                    confine.prepare, flow_name, found.parameters or {}, parameters, self.policy
                )
                try:
                    run = await client.create_flow_run_from_deployment(
                        found.id, parameters=parameters, tags=[f"{OWNER_TAG}{principal.owner}", "openautoglm-api"]
                    )
                except PrefectHTTPStatusError as error:
                    if error.response.status_code in (409, 422):
                        raise ApiError(
                            Code.INVALID,
                            "the parameters do not fit the deployment",
                            data={"errors": _detail(error.response)},
                        ) from None
                    raise
        except (httpx.ConnectError, httpx.TimeoutException, OSError) as error:
            raise _down(error) from None
        return _job(run, deployment)

    async def read(self, principal: Principal, job_id: str) -> dict[str, Any]:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
        from prefect.exceptions import ObjectNotFound

        try:
            uid = UUID(job_id)
        except ValueError:
            raise _not_found() from None
        try:
            async with get_client() as client:
                try:
                    run = await client.read_flow_run(uid)
                except ObjectNotFound:
                    raise _not_found() from None
                if not self._may_read(principal, run.tags):
                    raise _not_found()
                job = _job(run)
                flow_name = None
                if run.deployment_id:
                    try:
                        deployment = await client.read_deployment(run.deployment_id)
                        flow = await client.read_flow(run.flow_id)
                        job["deployment"] = f"{flow.name}/{deployment.name}"
                        flow_name = flow.name
                    except ObjectNotFound:
                        pass
                if run.state is not None and run.state.is_final():
                    artifacts = await client.read_artifacts(
                        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[uid]))
                    )
                    rows_ok = "admin" in principal.roles or (
                        flow_name is not None and confine.may_read_rows(flow_name, run.parameters, self.policy)
                    )
                    job["results"] = [
                        {
                            "key": a.key,
                            "type": a.type,
                            "description": a.description,
                            "data": _truncate(a.data),
                        }
                        for a in artifacts
                        if rows_ok or a.key not in confine.ROW_ARTIFACTS
                    ]
        except (httpx.ConnectError, httpx.TimeoutException, OSError) as error:
            raise _down(error) from None
        return job

    async def list(self, principal: Principal, limit: int = 50) -> list[dict[str, Any]]:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
        from prefect.client.schemas.sorting import FlowRunSort

        try:
            # Admins see every job the API created; others their own.
            tag = "openautoglm-api" if "admin" in principal.roles else f"{OWNER_TAG}{principal.owner}"
            async with get_client() as client:
                runs = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])),
                    sort=FlowRunSort.START_TIME_DESC,
                    limit=limit,
                )
        except (httpx.ConnectError, httpx.TimeoutException, OSError) as error:
            raise _down(error) from None
        return [_job(r) for r in runs]

    @staticmethod
    def _may_read(principal: Principal, tags: list[str]) -> bool:
        return "admin" in principal.roles or f"{OWNER_TAG}{principal.owner}" in tags

    async def healthy(self) -> bool:
        from prefect.client.orchestration import get_client

        try:
            async with get_client() as client:
                return (await client.api_healthcheck()) is None
        except Exception:
            return False


def _truncate(data: Any) -> Any:
    text = data if isinstance(data, str) else None
    if text is not None and len(text) > MAX_ARTIFACT_CHARS:
        return text[:MAX_ARTIFACT_CHARS] + "…"
    return data


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail")
    except Exception:
        return response.text[:500]
