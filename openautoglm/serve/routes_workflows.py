"""Saved workflows (``/api/v1/workflows``): list, read, save a version, versions, diff, check, run, export, and the
per-node state of a workflow run (``/api/v1/workflow-runs/{run_id}``). The contract is ``docs/canvas-contract.md``.

Saving refuses a file that is not a workflow file or whose graph is structurally wrong (unknown stage, missing node
or port, type mismatch, input fed twice, cycle) or names what a run would refuse (a path outside the data roots, a
caller-chosen URL or secret: the run's own confinement, :func:`~openautoglm.serve.confine.confine_params`) with
422 and ``data.errors`` ``[{node, message, hint}]``; a draft may still lack inputs and valid parameters (``check``
reports them). A run saves nothing: it starts the pipeline deployment (``OPENAUTOGLM_SERVE_WORKFLOW_DEPLOYMENT``)
with the version's graph, confined as any job is.

Paths: every path in a workflow is relative to the first data root (``OPENAUTOGLM_SERVE_DATA_ROOTS``); check, save
and run resolve it with that one confinement, and an export names that root (``DATA_ROOT``) so the file runs from
any folder.

No ``from __future__ import annotations`` here: FastAPI reads the endpoints' types from their annotations.
"""

import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path as PathType
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from openautoglm import __version__
from openautoglm.adapters.workflow_store import MAX_VERSION, StoredVersion, WorkflowNotFound, WorkflowStore
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.registry import normalize_name
from openautoglm.core.workflow import WorkflowError, WorkflowGraph
from openautoglm.core.workflow_file import NAME, WorkflowFile, load_workflow, semantic_diff
from openautoglm.serve import confine
from openautoglm.serve import schemas as s
from openautoglm.serve.auth import Principal
from openautoglm.serve.envelope import ApiError, Code, Envelope, error_responses, ok
from openautoglm.serve.jobs import WORKFLOW_TAG, WORKFLOW_VERSION_TAG, JobsService
from openautoglm.serve.settings import ServeSettings

log = logging.getLogger(__name__)

WorkflowName = Annotated[str, Path(pattern=NAME, description="lower-case letters, digits and '-'")]
Version = Annotated[int | None, Query(ge=1, le=MAX_VERSION, description="a version number (default: the latest)")]
FileBody = Annotated[
    dict[str, Any],
    Body(description="A workflow file (format version 1; a bare {nodes, edges} graph is migrated)."),
]
READ_ERRORS = (401, 403, 404, 422, 429, 500, 503)
#: What to do about a node's path outside the data roots, in the page's terms.
OUTSIDE_HINT = (
    "name a file under the data root, relative to it (e.g. user_feedback.csv); an operator adds folders to the "
    "data roots (OPENAUTOGLM_SERVE_DATA_ROOTS)"
)
#: The deployment's parameters a workflow run replaces whole: its graph is the workflow's, never merged.
WORKFLOW_OWN = ("graph", "reuse")


class WorkflowMeta(BaseModel):
    name: str
    description: str
    version: int
    hash: str = Field(description="SHA-256 of the whole file (a new version per new content)")
    logic_hash: str = Field(description="SHA-256 of name, description and graph (the layout left out)")
    created: str
    author: str


class WorkflowList(BaseModel):
    workflows: list[WorkflowMeta]


class WorkflowRead(BaseModel):
    workflow: WorkflowFile
    version: int
    hash: str
    logic_hash: str
    created: str
    author: str


class Saved(BaseModel):
    name: str
    version: int
    hash: str
    logic_hash: str
    created: str
    unchanged: bool = Field(description="the latest version already held this content: no new version")


class VersionMeta(BaseModel):
    version: int
    hash: str
    logic_hash: str
    created: str
    author: str


class VersionList(BaseModel):
    versions: list[VersionMeta]


class ParamChange(BaseModel):
    path: str
    before: Any = None
    after: Any = None


class NodeChange(BaseModel):
    id: str
    stage: list[str] | None = Field(description="[before, after], or null when the stage is the same")
    params: list[ParamChange]


class Diff(BaseModel):
    nodes_added: list[str]
    nodes_removed: list[str]
    nodes_changed: list[NodeChange]
    edges_added: list[str]
    edges_removed: list[str]
    name: list[str] | None = None
    description: list[str] | None = None


class ProblemOut(BaseModel):
    node: str | None = Field(description="the node at fault, or null")
    message: str
    hint: str | None = None


class CheckResult(BaseModel):
    ok: bool
    errors: list[ProblemOut]


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1, le=MAX_VERSION, description="default: the latest")
    from_run: uuid.UUID | None = Field(
        default=None,
        description="re-run from the changed nodes: an earlier run of this workflow by the caller whose node "
        "results are reused where a node and everything upstream of it are unchanged (those nodes come back "
        "'Cached'); only the changed nodes and what follows them run",
    )


class NodeError(BaseModel):
    message: str = Field(description="the node's error, one line (no traceback, no exception class)")
    what_to_do: str | None = Field(description="what to do next, in the page's terms (its form's fields), or null")


class LogLine(BaseModel):
    time: str
    level: str = Field(description="DEBUG, INFO, WARNING, ERROR, CRITICAL")
    message: str = Field(description="one line")


class NodeState(BaseModel):
    state: str = Field(description="PENDING (not started), SCHEDULED, RUNNING, COMPLETED, FAILED, CRASHED...")
    state_name: str | None
    task_run_id: str | None
    start_time: str | None
    end_time: str | None
    summary: dict[str, Any] | None = Field(
        description="the node's report once it finished: inputs/outputs summaries, rows_in, rows_out and (where "
        "the caller may see the input's rows) preview: the first rows of each output"
    )
    prefect_url: str | None = Field(default=None, description="the node's task run in the Prefect UI")
    mlflow_url: str | None = Field(default=None, description="the run's MLflow run (node metrics: <node>.<name>)")
    error: NodeError | None = Field(default=None, description="a FAILED or CRASHED node's error; else null")
    logs: list[LogLine] = Field(
        default_factory=list,
        description="the node's latest log lines, oldest first (where the caller may see its rows, as preview)",
    )


class RunLinks(BaseModel):
    prefect: str | None = Field(default=None, description="the flow run in the Prefect UI")
    mlflow: str | None = Field(default=None, description="the flow run's MLflow run")


class WorkflowRun(BaseModel):
    run: s.Job
    nodes: dict[str, NodeState]
    links: RunLinks = Field(default_factory=RunLinks)


class ScheduleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: str = Field(min_length=9, max_length=120, description="Cron expression, e.g. '0 2 * * *' (02:00 daily)")
    timezone: str = Field(default="UTC", min_length=1, max_length=64, description="IANA time zone of the cron")
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION, description="default: the latest")


class Schedule(BaseModel):
    deployment: str = Field(description="The workflow's own deployment of the pipeline flow: pipeline/wf-<name>")
    deployment_id: str
    cron: str | None
    timezone: str | None
    active: bool
    version: int | None = Field(description="the workflow version the scheduled runs run")


class Uploaded(BaseModel):
    path: str = Field(description="the file's path relative to the data root: what a load node's path takes")
    bytes: int
    rows: int = Field(description="data rows (a CSV's header left out; a JSONL file's non-blank lines)")
    columns: list[str] = Field(description="a CSV's header, or the keys of a JSONL file's objects")
    replaced: bool = Field(description="an upload of that name was there and is replaced")


#: The folder under the first data root that uploads go to (a workflow names them ``uploads/<name>``).
UPLOADS = "uploads"


class Export(BaseModel):
    filename: str
    code: str = Field(description="Python source of a Prefect flow running the workflow")


def _invalid(errors: list[dict[str, Any]], message: str) -> ApiError:
    return ApiError(Code.INVALID, message, data={"errors": errors})


def _shape_errors(error: ValidationError, body: Any) -> list[dict[str, Any]]:
    """Pydantic's errors as problems, naming the node when the error lies inside one."""
    nodes = body.get("graph", body).get("nodes") if isinstance(body, dict) else None
    out = []
    for item in error.errors()[:20]:
        loc = [str(p) for p in item.get("loc", ())]
        node = None
        if "nodes" in loc and isinstance(nodes, list):
            at = loc.index("nodes") + 1
            if at < len(loc) and loc[at].isdigit() and int(loc[at]) < len(nodes):
                candidate = nodes[int(loc[at])]
                node = candidate.get("id") if isinstance(candidate, dict) else None
        out.append(
            {
                "node": node if isinstance(node, str) else None,
                "message": f"{'.'.join(loc) or '(file)'}: {item['msg']}",
                "hint": None,
            }
        )
    return out


def _refused_parameter(error: ApiError, file: WorkflowFile) -> ApiError:
    """A job refusal naming a parameter (``graph.nodes.<i>.params...``, see :mod:`~openautoglm.serve.confine`)
    given ``data.errors`` that name the node, as the save and check routes do; other errors unchanged."""
    where = str((error.data or {}).get("parameter", ""))
    parts = where.split(".")
    if error.code is not Code.INVALID or parts[:2] != ["graph", "nodes"] or len(parts) < 3 or not parts[2].isdigit():
        return error
    index = int(parts[2])
    node = file.graph.nodes[index].id if index < len(file.graph.nodes) else None
    entry = {"node": node, "message": error.message, "hint": None}
    return ApiError(error.code, error.message, data={**(error.data or {}), "errors": [entry]}, headers=error.headers)


def refused_values(graph: WorkflowGraph, policy: confine.JobPolicy) -> list[dict[str, Any]]:
    """What a run of ``graph`` would refuse in each node's parameters (a path outside the data roots, a URL or
    secret chosen by the caller...), found by the run's own confinement (:func:`confine.confine_params`), as
    ``[{node, message, hint}]``. Parameters that do not validate yet are left to the draft checks."""
    from openautoglm.stages import catalogue

    stages = catalogue()
    found = []
    for node in graph.nodes:
        entry = stages.get(normalize_name(node.stage))
        if entry is None:
            continue  # an unknown stage: a structural problem, reported by the graph checks
        try:
            params = entry.check_params(node.params)
        except (ValueError, ConfigurationError):  # pydantic's ValidationError is a ValueError
            continue
        try:
            confine.confine_params(params, policy)
        except ApiError as error:
            hint = OUTSIDE_HINT if "data roots" in error.message else None
            found.append(
                {"node": node.id, "message": f"Node '{node.id}' ({entry.name}): {error.message}", "hint": hint}
            )
    return found


def _write_upload(root: PathType, name: str, data: bytes) -> bool:
    """Write ``data`` to ``root/uploads/name`` at once (a temp file renamed); whether a file was replaced.
    Refuses (422) an uploads folder that resolves outside the root (a symlink)."""
    folder = root / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    if not folder.resolve().is_relative_to(root.resolve()):
        raise ApiError(Code.INVALID, f"the data root's {UPLOADS}/ folder leads outside it; an operator must fix it")
    target = folder / name
    replaced = target.exists()
    part = folder / f".{name}.{uuid.uuid4().hex}.part"
    try:
        part.write_bytes(data)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return replaced


def parse_file(body: Any, name: str | None) -> WorkflowFile:
    """The body as a v1 workflow file (migrated), or a 422 listing what is wrong."""
    try:
        return load_workflow(body, name=name, app_version=__version__)
    except WorkflowError as error:
        raise _invalid([{"node": None, "message": error.message, "hint": error.hint}], error.message) from None
    except ValidationError as error:
        raise _invalid(_shape_errors(error, body), "the body is not a valid workflow file") from None


def workflow_router(
    settings: ServeSettings,
    guard: Callable[[str], Callable[..., Awaitable[Principal]]],
    jobs: JobsService,
    store: WorkflowStore,
    metrics: Any = None,
    prefix: str = "/api/v1",
) -> APIRouter:
    """The workflow routes, on ``store``; ``metrics`` (the app's) counts the runs they start. With
    ``workflow_executor=warm`` the router's lifespan runs the warm executor (:mod:`~openautoglm.serve.warm`)."""
    from openautoglm.serve.warm import WarmExecutor

    warm = WarmExecutor() if settings.workflow_executor == "warm" else None

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        if warm is not None:
            warm.start()
        try:
            yield
        finally:
            if warm is not None:
                await run_in_threadpool(warm.stop)

    router = APIRouter(prefix=prefix, lifespan=lifespan)

    async def in_store(call: Callable[..., Any], *args: Any) -> Any:
        """A store call in a worker thread; a missing workflow is 404 and a database that fails is 503."""
        try:
            return await run_in_threadpool(call, *args)
        except WorkflowNotFound as error:
            raise ApiError(Code.NOT_FOUND, error.message) from None
        except SQLAlchemyError as error:
            log.warning("workflow store failed: %s", type(error).__name__)
            raise ApiError(
                Code.DEPENDENCY_DOWN, "the workflow store is unavailable", headers={"Retry-After": "5"}
            ) from None
        except ConfigurationError as error:
            raise ApiError(Code.CONFLICT, error.message) from None

    async def runnable(name: str, version: int | None) -> StoredVersion:
        """A stored version whose graph can run (all checks but pre-flight: the files are the worker's), or 422."""
        from openautoglm.core.workflow import graph_problems
        from openautoglm.stages import signatures

        stored: StoredVersion = await in_store(store.get, name, version)
        errors = [p.as_dict() for p in await run_in_threadpool(graph_problems, stored.file.graph, signatures())]
        if errors:
            raise _invalid(errors, f"version {stored.version} of '{name}' cannot run: {errors[0]['message']}")
        return stored

    async def reused_run(principal: Principal, run_id: str) -> str:
        """The run whose kept node results a re-run from ``run_id`` reuses: ``run_id``'s own ``reuse`` (a re-run
        of a re-run keeps the first run's results) or ``run_id``; 404 unless it is the caller's workflow run.
        (The results are scoped by owner and workflow too, so another's run could not be read anyway.)"""
        earlier = await jobs.read(principal, run_id)
        params = (earlier.get("parameters") or {}).get("params") or {}
        if not isinstance(params, dict) or not isinstance(params.get("graph"), dict):
            raise ApiError(Code.NOT_FOUND, f"no workflow run {run_id} to re-run from")
        reuse = params.get("reuse")
        return reuse if isinstance(reuse, str) and reuse else run_id

    async def problems(file: WorkflowFile, structural_only: bool) -> list[dict[str, Any]]:
        """The graph's problems and what a run would refuse in its nodes (:func:`refused_values`); pre-flight
        (which looks at files on this host) only of parameters the job policy accepts, with their paths resolved
        as a run sends them, so a check tells nothing of files outside the data roots."""
        from openautoglm.stages import workflow_problems

        def found() -> list[dict[str, Any]]:
            listed = workflow_problems(
                file.graph,
                structural_only=structural_only,
                resolve=lambda params: confine.resolved_params(params, jobs.policy),
            )
            return [p.as_dict() for p in listed] + refused_values(file.graph, jobs.policy)

        return await run_in_threadpool(found)

    @router.get(
        "/workflows",
        response_model=Envelope[WorkflowList],
        responses=error_responses(401, 403, 429, 500, 503),
        tags=["workflows"],
        summary="Saved workflows (the latest version of each)",
    )
    async def workflows_list(principal: Annotated[Principal, Depends(guard("workflows_list"))]) -> dict[str, Any]:
        return ok({"workflows": [v.meta() for v in await in_store(store.list)]})

    @router.get(
        "/workflows/{name}",
        response_model=Envelope[WorkflowRead],
        responses=error_responses(*READ_ERRORS),
        tags=["workflows"],
        summary="A workflow file (the latest version, or ?version=N)",
    )
    async def workflows_read(
        name: WorkflowName,
        principal: Annotated[Principal, Depends(guard("workflows_read"))],
        version: Version = None,
    ) -> dict[str, Any]:
        stored: StoredVersion = await in_store(store.get, name, version)
        meta = stored.meta()
        return ok(
            {
                "workflow": stored.file.model_dump(mode="json"),
                **{k: meta[k] for k in ("version", "hash", "logic_hash", "created", "author")},
            }
        )

    @router.put(
        "/workflows/{name}",
        response_model=Envelope[Saved],
        responses=error_responses(400, 401, 403, 409, 413, 422, 429, 500, 503),
        tags=["workflows"],
        summary="Save a workflow file as a new version (none when the content is unchanged)",
    )
    async def workflows_save(
        name: WorkflowName, body: FileBody, principal: Annotated[Principal, Depends(guard("workflows_save"))]
    ) -> dict[str, Any]:
        file = parse_file(body, name)
        if file.name != name:
            raise _invalid(
                [{"node": None, "message": f"the file is named '{file.name}', the path '{name}'", "hint": None}],
                f"the file's name '{file.name}' is not the path's '{name}'",
            )
        errors = await problems(file, structural_only=True)
        if errors:
            raise _invalid(errors, errors[0]["message"])
        result = await in_store(store.save, file, principal.sub)
        meta = result.stored.meta()
        return ok(
            {
                **{k: meta[k] for k in ("name", "version", "hash", "logic_hash", "created")},
                "unchanged": result.unchanged,
            }
        )

    @router.get(
        "/workflows/{name}/versions",
        response_model=Envelope[VersionList],
        responses=error_responses(*READ_ERRORS),
        tags=["workflows"],
        summary="Every version of a workflow, newest first",
    )
    async def workflows_versions(
        name: WorkflowName, principal: Annotated[Principal, Depends(guard("workflows_versions"))]
    ) -> dict[str, Any]:
        versions = await in_store(store.versions, name)
        keys = ("version", "hash", "logic_hash", "created", "author")
        return ok({"versions": [{k: v.meta()[k] for k in keys} for v in versions]})

    @router.get(
        "/workflows/{name}/diff",
        response_model=Envelope[Diff],
        responses=error_responses(*READ_ERRORS),
        tags=["workflows"],
        summary="What changed in the logic between two versions (positions ignored)",
    )
    async def workflows_diff(
        name: WorkflowName,
        principal: Annotated[Principal, Depends(guard("workflows_diff"))],
        from_version: Annotated[
            int | None, Query(alias="from", ge=1, le=MAX_VERSION, description="default: the version before 'to'")
        ] = None,
        to_version: Annotated[
            int | None, Query(alias="to", ge=1, le=MAX_VERSION, description="default: latest")
        ] = None,
    ) -> dict[str, Any]:
        after: StoredVersion = await in_store(store.get, name, to_version)
        before: StoredVersion = await in_store(store.get, name, from_version or max(1, after.version - 1))
        return ok(semantic_diff(before.file, after.file))

    @router.post(
        "/workflows/check",
        response_model=Envelope[CheckResult],
        responses=error_responses(400, 401, 403, 413, 422, 429, 500),
        tags=["workflows"],
        summary="Check a workflow file without running it: schemas, ports, inputs, cycles, pre-flight",
    )
    async def workflows_check(
        body: FileBody, principal: Annotated[Principal, Depends(guard("workflows_check"))]
    ) -> dict[str, Any]:
        try:
            file = parse_file(body, "draft")
        except ApiError as error:
            return ok({"ok": False, "errors": (error.data or {}).get("errors", [])})
        errors = await problems(file, structural_only=False)
        return ok({"ok": not errors, "errors": errors})

    @router.post(
        "/workflows/{name}/runs",
        response_model=Envelope[s.Job],
        responses=error_responses(400, 401, 403, 404, 413, 422, 429, 500, 503),
        tags=["jobs"],
        summary="Run a saved workflow (a version, default the latest) on the pipeline deployment",
    )
    async def workflows_run(
        name: WorkflowName,
        principal: Annotated[Principal, Depends(guard("workflows_run"))],
        body: Annotated[RunRequest | None, Body()] = None,
    ) -> dict[str, Any]:
        stored = await runnable(name, body.version if body else None)
        params: dict[str, Any] = {"graph": stored.file.graph.model_dump(mode="json")}
        if body is not None and body.from_run is not None:
            params["reuse"] = await reused_run(principal, str(body.from_run))
        try:
            job = await jobs.create(
                principal,
                settings.workflow_deployment,
                {"params": params},
                tags=[f"{WORKFLOW_TAG}{name}", f"{WORKFLOW_VERSION_TAG}{stored.version}"],
                listed_only=False,
                replace=WORKFLOW_OWN,
            )
        except ApiError as error:
            raise _refused_parameter(error, stored.file) from None
        if warm is not None:
            warm.submit(job["id"])  # else (or if it is down) a worker of the deployment's pool runs it
        if metrics is not None:
            metrics.jobs.labels(deployment=settings.workflow_deployment).inc()
        return ok(job)

    @router.get(
        "/workflows/{name}/schedule",
        response_model=Envelope[Schedule | None],
        responses=error_responses(401, 403, 404, 429, 500, 503),
        tags=["jobs"],
        summary="The workflow's schedule (its own deployment with a cron), or null; another user's is 404",
    )
    async def workflows_schedule_read(
        name: WorkflowName, principal: Annotated[Principal, Depends(guard("workflows_schedule_read"))]
    ) -> dict[str, Any]:
        return ok(await jobs.read_schedule(principal, settings.workflow_deployment, name))

    @router.put(
        "/workflows/{name}/schedule",
        response_model=Envelope[Schedule],
        responses=error_responses(400, 401, 403, 404, 413, 422, 429, 500, 503),
        tags=["jobs"],
        summary="Run a version of the workflow on a cron: its own deployment pipeline/wf-<name>, confined as a job "
        "(another user's schedule is 404)",
    )
    async def workflows_schedule(
        name: WorkflowName,
        body: ScheduleRequest,
        principal: Annotated[Principal, Depends(guard("workflows_schedule"))],
    ) -> dict[str, Any]:
        stored = await runnable(name, body.version)
        try:
            scheduled = await jobs.schedule(
                principal,
                settings.workflow_deployment,
                name,
                {"params": {"graph": stored.file.graph.model_dump(mode="json")}},
                body.cron,
                body.timezone,
                tags=[f"{WORKFLOW_TAG}{name}", f"{WORKFLOW_VERSION_TAG}{stored.version}"],
                replace=WORKFLOW_OWN,
            )
        except ApiError as error:
            raise _refused_parameter(error, stored.file) from None
        log.info(
            "workflow %s v%d scheduled '%s' (%s) by %s", name, stored.version, body.cron, body.timezone, principal.sub
        )
        return ok(scheduled)

    @router.delete(
        "/workflows/{name}/schedule",
        response_model=Envelope[None],
        responses=error_responses(401, 403, 404, 429, 500, 503),
        tags=["jobs"],
        summary="Stop running the workflow on a schedule (deletes its deployment and its future runs); another "
        "user's is 404",
    )
    async def workflows_unschedule(
        name: WorkflowName, principal: Annotated[Principal, Depends(guard("workflows_schedule"))]
    ) -> dict[str, Any]:
        await jobs.schedule(principal, settings.workflow_deployment, name, {}, None)
        return ok(None)

    @router.get(
        "/workflow-runs/{run_id}",
        response_model=Envelope[WorkflowRun],
        responses=error_responses(401, 403, 404, 429, 500, 503),
        tags=["jobs"],
        summary="A workflow run and the state of each node (its task run) with the node's summary",
    )
    async def workflow_runs_read(
        run_id: Annotated[str, Path(max_length=64)],
        principal: Annotated[Principal, Depends(guard("workflow_runs_read"))],
    ) -> dict[str, Any]:
        return ok(await jobs.read_workflow_run(principal, run_id))

    @router.post(
        "/workflow-runs/{run_id}/retry",
        response_model=Envelope[s.Job],
        responses=error_responses(401, 403, 404, 409, 429, 500, 503),
        tags=["jobs"],
        summary="Re-run a failed workflow run: the same flow run again, reusing the nodes that finished",
    )
    async def workflow_runs_retry(
        run_id: Annotated[str, Path(max_length=64)],
        principal: Annotated[Principal, Depends(guard("workflow_runs_retry"))],
    ) -> dict[str, Any]:
        job = await jobs.retry(principal, run_id)
        if warm is not None and job.get("deployment") == settings.workflow_deployment:
            warm.submit(job["id"])  # a pipeline run: the executor runs it again, reusing the finished nodes
        return ok(job)

    @router.put(
        "/data-files/{name}",
        response_model=Envelope[Uploaded],
        responses=error_responses(400, 401, 403, 413, 422, 429, 500),
        tags=["workflows"],
        summary="Upload a CSV or JSONL file (the raw body, Content-Type text/csv or application/x-ndjson) into "
        "uploads/ under the first data root; the name is made safe; at most OPENAUTOGLM_SERVE_MAX_BODY_BYTES",
    )
    async def data_files_upload(
        name: Annotated[str, Path(min_length=1, max_length=200)],
        request: Request,
        principal: Annotated[Principal, Depends(guard("data_files_upload"))],
    ) -> dict[str, Any]:
        from openautoglm.core.data.upload import inspect_upload, safe_upload_name

        if not jobs.policy.data_roots:
            raise ApiError(
                Code.INVALID, "uploads need a data root and none is configured (OPENAUTOGLM_SERVE_DATA_ROOTS)"
            )
        try:
            safe = safe_upload_name(name)
            data = await request.body()  # the body limit middleware has capped it at max_body_bytes
            summary = inspect_upload(safe, data)
        except ConfigurationError as error:
            raise ApiError(Code.INVALID, error.message, data={"hint": error.hint}) from None
        replaced = await run_in_threadpool(_write_upload, jobs.policy.data_roots[0], safe, data)
        log.info("upload %s/%s (%d bytes) by %s", UPLOADS, safe, len(data), principal.sub)
        return ok(
            {
                "path": f"{UPLOADS}/{safe}",
                "bytes": len(data),
                "rows": summary.rows,
                "columns": list(summary.columns),
                "replaced": replaced,
            }
        )

    @router.get(
        "/workflows/{name}/export",
        response_model=Envelope[Export],
        responses=error_responses(*READ_ERRORS),
        tags=["workflows"],
        summary="A version of a workflow as a Python file (a Prefect flow calling the stage task per node; its "
        "relative paths start from the first data root, which the file names)",
    )
    async def workflows_export(
        name: WorkflowName,
        principal: Annotated[Principal, Depends(guard("workflows_export"))],
        version: Version = None,
    ) -> dict[str, Any]:
        from openautoglm.core.workflow_codegen import export_code
        from openautoglm.stages import export_stages

        stored: StoredVersion = await in_store(store.get, name, version)
        try:
            root = jobs.policy.data_roots[0].resolve() if jobs.policy.data_roots else None
            code = await run_in_threadpool(lambda: export_code(stored.file, export_stages(), data_root=root))
        except WorkflowError as error:
            raise _invalid([{"node": None, "message": error.message, "hint": error.hint}], error.message) from None
        return ok({"filename": f"{name}.py", "code": code})

    return router
