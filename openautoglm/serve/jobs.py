"""``/api/v1/jobs``: trigger a Prefect deployment run, read its state and results.

A job is a Prefect flow run created from a deployment (the same deployments ``openautoglm deploy`` registers).
Its creator is recorded as a tag ``openautoglm-owner:<hash of iss and sub>`` on the flow run, so ownership
survives restarts and holds across API replicas: a job of another subject is answered 404, as if it did not
exist (admins may read and list every job). A workflow's schedule (its own deployment) is owned the same way,
by the same tag on the deployment: another subject's is 404 to read, replace or delete (admins may do all, and an
admin's change leaves it with its owner). Results are the run's artifacts (tables, links, markdown) once it
finishes; artifacts that carry input rows are shown only when every file the run read lies under the data roots
(or to admins). What a caller may ask of a worker is :mod:`openautoglm.serve.confine`'s policy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import httpx

from openautoglm.serve import confine
from openautoglm.serve.auth import Principal
from openautoglm.serve.envelope import ApiError, Code

log = logging.getLogger(__name__)

OWNER_TAG = "openautoglm-owner:"
#: Tag of a flow run started from a saved workflow: ``openautoglm-workflow:<name>`` (and ``...-version:<n>``).
WORKFLOW_TAG = "openautoglm-workflow:"
WORKFLOW_VERSION_TAG = "openautoglm-workflow-version:"
#: A scheduled workflow's own deployment is ``<flow>/wf-<workflow name>``.
SCHEDULE_PREFIX = "wf-"
#: The description of a node's artifact: ``node:<node id>`` (published by the pipeline task).
NODE_ARTIFACT_PREFIX = "node:"
MAX_ARTIFACT_CHARS = 4000
MAX_SUMMARY_CHARS = 200_000
#: Characters of a failed node's error message shown in its panel.
MAX_ERROR_CHARS = 600
#: A workflow run's latest log lines read per poll, and kept per node (its panel's log).
RUN_LOG_LINES = 200
NODE_LOG_LINES = 30
MAX_LOG_CHARS = 500
#: How Prefect words a failed run's message; the page shows what follows.
PREFECT_PREFIX = re.compile(r"^(?:Task|Flow) run encountered an exception ")
#: An exception's class name before its message (``ValidationGateError: ...``).
EXCEPTION_NAME = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Z]\w*(?:Error|Exception|Exit)?: ")
#: A CLI flag in an error's hint, and its value: ``--gate quarantine``, ``--text-column``.
CLI_FLAG = re.compile(
    r"((?:run|load|pass|set) )?(with )?--([a-z][a-z0-9-]*)(?:[ =](?!(?:to|or|and|for|with)\b)([^\s,;/)]+))?"
)
#: A parenthesis that only repeats the advice for another face: ``(CLI: --encoding gbk)``, ``(root= in Python)``.
OTHER_FACE = re.compile(r" ?\((?:CLI: [^)]*|[^)]*in Python|--[^)]*)\)")
#: What to do about a crashed node (its process ended under it): no error of ours says more.
CRASHED_HINT = (
    "the run stopped under this node (its worker or process ended): run it again; if it repeats, ask an operator "
    "to look at the worker's log"
)


def _down(error: Exception) -> ApiError:
    log.warning("Prefect server unreachable: %s", type(error).__name__)
    return ApiError(Code.DEPENDENCY_DOWN, "the Prefect server is unreachable", headers={"Retry-After": "5"})


def _not_found() -> ApiError:
    return ApiError(Code.NOT_FOUND, "no such job")


def _not_yours(name: str) -> ApiError:
    # Not hidden as jobs are: the deployment's name is the workflow's, and a PUT must say why it cannot take it.
    return ApiError(
        Code.NOT_FOUND,
        f"workflow '{name}' is scheduled by another user: only they or an admin may read, replace or delete its "
        "schedule",
    )


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

    async def create(
        self,
        principal: Principal,
        deployment: str,
        parameters: dict[str, Any],
        *,
        tags: Sequence[str] = (),
        listed_only: bool = True,
        replace: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Create a flow run of ``deployment`` with the caller's ``parameters`` (confined, see
        :mod:`~openautoglm.serve.confine`), tagged with its owner and ``tags``.

        Args:
            listed_only: Refuse a deployment outside ``allowed`` (the caller named it); False when the server
                chose the deployment (the workflow runs' ``OPENAUTOGLM_SERVE_WORKFLOW_DEPLOYMENT``).
            replace: Fields of the deployment's ``params`` the caller's replace whole, with nothing of the
                deployment's trusted (a workflow run's ``graph``: its paths all checked and resolved).
        """
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

        if listed_only and self.allowed and deployment not in self.allowed:
            raise ApiError(Code.NOT_FOUND, f"no deployment '{deployment}' is open to the API")
        try:
            async with get_client() as client:
                try:
                    found = await client.read_deployment_by_name(deployment)
                except ObjectNotFound:
                    raise ApiError(Code.NOT_FOUND, f"no deployment named '{deployment}'") from None
                flow_name = deployment.partition("/")[0]
                parameters = await asyncio.to_thread(
                    confine.prepare, flow_name, _without(found.parameters, replace), parameters, self.policy
                )
                try:
                    run = await client.create_flow_run_from_deployment(
                        found.id,
                        parameters=parameters,
                        tags=[f"{OWNER_TAG}{principal.owner}", "openautoglm-api", *tags],
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

    async def schedule(
        self,
        principal: Principal,
        base: str,
        name: str,
        parameters: dict[str, Any],
        cron: str | None,
        timezone: str = "UTC",
        tags: Sequence[str] = (),
        replace: Sequence[str] = (),
    ) -> dict[str, Any] | None:
        """Give a workflow its own deployment of the pipeline flow, ``pipeline/wf-<name>``, with ``parameters``
        (confined) and a cron schedule, cloned from the ``base`` deployment (its work pool, entrypoint and pull
        steps); ``cron=None`` deletes that deployment and so its schedule. Returns :func:`_schedule` of it.

        The schedule belongs to whoever set it first (the owner tag on the deployment): another subject's is 404
        to replace or delete, and an admin who replaces it leaves it with its owner (whose jobs its runs are).
        Workflows themselves are shared, so any operator may schedule one nobody has scheduled yet.

        Raises:
            ApiError: 404 (no base deployment, another subject's schedule), 422 (a refused parameter, a bad cron
                or timezone), 503.
        """
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import DeploymentScheduleCreate
        from prefect.client.schemas.schedules import CronSchedule
        from prefect.exceptions import ObjectNotFound
        from pydantic import ValidationError

        flow_name = base.partition("/")[0]
        own = f"{flow_name}/{SCHEDULE_PREFIX}{name}"
        try:
            async with get_client() as client:
                try:
                    existing = await client.read_deployment_by_name(own)
                except ObjectNotFound:
                    existing = None
                if existing is not None and not self._may_read(principal, existing.tags or []):
                    raise _not_yours(name)
                if cron is None:
                    if existing is not None:
                        await client.delete_deployment(existing.id)
                    return None
                try:
                    schedule = CronSchedule(cron=cron, timezone=timezone)
                except ValidationError as error:
                    message = error.errors()[0].get("msg", "invalid") if error.errors() else "invalid"
                    raise ApiError(Code.INVALID, f"schedule: {message}", data={"parameter": "cron"}) from None
                try:
                    found = await client.read_deployment_by_name(base)
                except ObjectNotFound:
                    raise ApiError(Code.NOT_FOUND, f"no deployment named '{base}'") from None
                sent = await asyncio.to_thread(
                    confine.prepare, flow_name, _without(found.parameters, replace), parameters, self.policy
                )
                deployment_id = await client.create_deployment(
                    flow_id=found.flow_id,
                    name=own.partition("/")[2],
                    description=f"Workflow '{name}' on a schedule (set through the API)",
                    parameters=sent,
                    schedules=[DeploymentScheduleCreate(schedule=schedule, active=True)],
                    work_pool_name=found.work_pool_name,
                    work_queue_name=found.work_queue_name,
                    entrypoint=found.entrypoint,
                    path=found.path,
                    pull_steps=found.pull_steps,
                    job_variables=found.job_variables,
                    parameter_openapi_schema=found.parameter_openapi_schema,
                    enforce_parameter_schema=found.enforce_parameter_schema,
                    tags=[*_owner_tags(existing, principal), "openautoglm-api", *tags],
                )
                return _schedule(await client.read_deployment(deployment_id), own)
        except (httpx.ConnectError, httpx.TimeoutException, OSError) as error:
            raise _down(error) from None

    async def read_schedule(self, principal: Principal, base: str, name: str) -> dict[str, Any] | None:
        """The workflow's scheduled deployment (see :meth:`schedule`), or None; another subject's is 404."""
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        own = f"{base.partition('/')[0]}/{SCHEDULE_PREFIX}{name}"
        try:
            async with get_client() as client:
                try:
                    found = await client.read_deployment_by_name(own)
                except ObjectNotFound:
                    return None
        except (httpx.ConnectError, httpx.TimeoutException, OSError) as error:
            raise _down(error) from None
        if not self._may_read(principal, found.tags or []):
            raise _not_yours(name)
        return _schedule(found, own)

    async def retry(self, principal: Principal, job_id: str) -> dict[str, Any]:
        """Run a failed, crashed or cancelled job's flow run again (its worker picks it up; a pipeline run reuses
        the nodes that finished). Another owner's run is 404 as for :meth:`read`; a run that did not fail, 409."""
        from prefect.client.orchestration import get_client
        from prefect.states import AwaitingRetry

        uid = _uuid(job_id)
        try:
            async with get_client() as client:
                _, run = await self._read_job(client, principal, uid)
                state = run.state
                if state is None or not (state.is_failed() or state.is_crashed() or state.is_cancelled()):
                    name = state.name if state is not None else "no state"
                    raise ApiError(Code.CONFLICT, f"only a failed, crashed or cancelled run can be re-run ({name})")
                await client.set_flow_run_state(
                    uid, AwaitingRetry(message=f"re-run through the API by {principal.sub}"), force=True
                )
                job, _ = await self._read_job(client, principal, uid)
        except (httpx.ConnectError, httpx.TimeoutException, OSError) as error:
            raise _down(error) from None
        log.info("job %s re-run by %s", uid, principal.sub)
        return job

    async def read(self, principal: Principal, job_id: str) -> dict[str, Any]:
        from prefect.client.orchestration import get_client

        uid = _uuid(job_id)
        try:
            async with get_client() as client:
                job, _ = await self._read_job(client, principal, uid)
        except (httpx.ConnectError, httpx.TimeoutException, OSError) as error:
            raise _down(error) from None
        return job

    async def _read_job(self, client: Any, principal: Principal, uid: UUID) -> tuple[dict[str, Any], Any]:
        """The job (404 unless the caller owns it or is an admin) and its flow run."""
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
        from prefect.exceptions import ObjectNotFound

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
        return job, run

    async def read_workflow_run(self, principal: Principal, run_id: str) -> dict[str, Any]:
        """A workflow run (a flow run whose parameters hold a workflow graph) and the state of each node.

        Each node's task run is the one named after the node (the pipeline flow names them so); a node without
        one has not started (``PENDING``). Its ``summary`` is what the node's artifact (description
        ``node:<id>``) says, once the node has published one; a failed or crashed node's ``error`` is
        :func:`node_error` of its state; ``logs`` are the node's task run's latest log lines (up to
        :data:`NODE_LOG_LINES`, oldest first), given where its preview is (they may quote input rows).

        Raises:
            ApiError: 404 (no such run, another owner's, or not a workflow run), 503 (Prefect down).
        """
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            ArtifactFilter,
            ArtifactFilterFlowRunId,
            FlowRunFilter,
            FlowRunFilterId,
            LogFilter,
            LogFilterFlowRunId,
        )
        from prefect.client.schemas.sorting import LogSort

        uid = _uuid(run_id)
        try:
            async with get_client() as client:
                job, run = await self._read_job(client, principal, uid)
                graph = ((run.parameters or {}).get("params") or {}).get("graph")
                if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list):
                    raise ApiError(Code.NOT_FOUND, "no such workflow run")
                node_ids: list[str] = [
                    n["id"] for n in graph["nodes"] if isinstance(n, dict) and isinstance(n.get("id"), str)
                ]
                task_runs = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uid])), limit=200
                )
                artifacts = await client.read_artifacts(
                    artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[uid]))
                )
                lines = (
                    await client.read_logs(
                        LogFilter(flow_run_id=LogFilterFlowRunId(any_=[uid])),
                        limit=RUN_LOG_LINES,
                        sort=LogSort.TIMESTAMP_DESC,
                    )
                    if task_runs
                    else []
                )
        except (httpx.ConnectError, httpx.TimeoutException, OSError) as error:
            raise _down(error) from None
        # A retried flow run has a task run per attempt and node: the latest one is the node's state now.
        by_name = {t.name: t for t in sorted(task_runs, key=_created) if t.flow_run_id == uid}
        rows_ok = "admin" in principal.roles or confine.may_read_rows("pipeline", run.parameters, self.policy)
        summaries: dict[str, Any] = {}
        links: dict[str, str | None] = {"prefect": _ui_url("flow-run", uid), "mlflow": None}
        for artifact in sorted(artifacts, key=_created):
            description = artifact.description or ""
            if description.startswith(NODE_ARTIFACT_PREFIX):
                summary = _node_summary(artifact.data)
                if summary is not None and not rows_ok:
                    summary.pop("preview", None)  # the first rows: input data, shown as the jobs route shows rows
                summaries[description.removeprefix(NODE_ARTIFACT_PREFIX)] = summary
            elif artifact.key == "mlflow-run":
                links["mlflow"] = _link(artifact.data)
        logs = node_logs(lines, {str(t.id): name for name, t in by_name.items()}) if rows_ok else {}
        nodes = {}
        for node_id in node_ids:
            task_run = by_name.get(node_id)
            state = task_run.state if task_run is not None else None
            nodes[node_id] = {
                "state": state.type.value if state is not None else "PENDING",
                "state_name": state.name if state is not None else "Pending",
                "task_run_id": str(task_run.id) if task_run is not None else None,
                "start_time": _iso(task_run.start_time) if task_run is not None else None,
                "end_time": _iso(task_run.end_time) if task_run is not None else None,
                "summary": summaries.get(node_id),
                "prefect_url": _ui_url("task-run", task_run.id) if task_run is not None else None,
                "mlflow_url": links["mlflow"],
                "error": node_error(state),
                "logs": logs.get(node_id, []),
            }
        return {"run": job, "nodes": nodes, "links": links}

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
    def _may_read(principal: Principal, tags: Sequence[str]) -> bool:
        return "admin" in principal.roles or f"{OWNER_TAG}{principal.owner}" in tags

    async def healthy(self) -> bool:
        from prefect.client.orchestration import get_client

        try:
            async with get_client() as client:
                return (await client.api_healthcheck()) is None
        except Exception:
            return False


def _without(defaults: dict[str, Any] | None, replace: Sequence[str]) -> dict[str, Any]:
    """A deployment's parameters less the fields of its ``params`` that a caller's replace whole."""
    defaults = dict(defaults or {})
    if replace and isinstance(defaults.get("params"), dict):
        defaults["params"] = {k: v for k, v in defaults["params"].items() if k not in replace}
    return defaults


def in_page_terms(hint: str) -> str:
    """An error's advice as the canvas page words it: a CLI flag becomes the node's form field
    (``run with --gate quarantine`` -> ``set this node's 'gate' to quarantine``), advice for other faces goes."""

    def field(match: re.Match[str]) -> str:
        verb, name, value = match.group(1) or "", match.group(3).replace("-", "_"), match.group(4)
        return f"set this node's '{name}' to {value}" if value else f"{verb}this node's '{name}'"

    return " ".join(CLI_FLAG.sub(field, OTHER_FACE.sub("", hint)).split())


def node_logs(lines: Sequence[Any], nodes: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """Log lines (newest first, as read) by node, oldest first, at most :data:`NODE_LOG_LINES` each: ``{"time":
    ISO, "level": "INFO", "message": one line}``; ``nodes`` maps a task run id to its node."""
    found: dict[str, list[dict[str, str]]] = {}
    for line in lines:
        node = nodes.get(str(line.task_run_id)) if line.task_run_id is not None else None
        if node is None or len(found.setdefault(node, [])) >= NODE_LOG_LINES:
            continue
        text = " ".join(str(line.message).split())
        found[node].append(
            {
                "time": _iso(line.timestamp) or "",
                "level": logging.getLevelName(line.level),
                "message": text if len(text) <= MAX_LOG_CHARS else text[: MAX_LOG_CHARS - 1] + "…",
            }
        )
    return {node: entries[::-1] for node, entries in found.items()}


def node_error(state: Any) -> dict[str, str | None] | None:
    """A failed or crashed node's error as its panel shows it: ``{"message": one line, without Prefect's words or
    the exception's class, "what_to_do": the error's hint in the page's terms (:func:`in_page_terms`) or None}``;
    None for a node that did not fail."""
    if state is None or not (state.is_failed() or state.is_crashed()):
        return None
    text = PREFECT_PREFIX.sub("", state.message or state.name or "failed")
    text = EXCEPTION_NAME.sub("", text.strip())
    message, _, hint = text.partition("\n  hint: ")
    message = " ".join(message.split())
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 1] + "…"
    advice = in_page_terms(hint) if hint.strip() else (CRASHED_HINT if state.is_crashed() else None)
    return {"message": message or state.name or "failed", "what_to_do": advice}


def _owner_tags(existing: Any, principal: Principal) -> list[str]:
    """The owner tag of a schedule being set: the existing deployment's (an admin's change keeps it with its
    owner), else the caller's."""
    kept = [t for t in (existing.tags or []) if t.startswith(OWNER_TAG)] if existing is not None else []
    return kept or [f"{OWNER_TAG}{principal.owner}"]


def _schedule(deployment: Any, name: str) -> dict[str, Any]:
    """A scheduled workflow deployment as the API shows it."""
    schedules = [d for d in deployment.schedules or [] if getattr(d.schedule, "cron", None)]
    first = schedules[0] if schedules else None
    tags = deployment.tags or []
    version = next((t.removeprefix(WORKFLOW_VERSION_TAG) for t in tags if t.startswith(WORKFLOW_VERSION_TAG)), None)
    return {
        "deployment": name,
        "deployment_id": str(deployment.id),
        "cron": first.schedule.cron if first else None,
        "timezone": first.schedule.timezone if first else None,
        "active": bool(first.active) if first else False,
        "version": int(version) if version and version.isdigit() else None,
    }


def _uuid(job_id: str) -> UUID:
    try:
        return UUID(job_id)
    except ValueError:
        raise _not_found() from None


def _created(obj: Any) -> str:
    return obj.created.isoformat() if getattr(obj, "created", None) is not None else ""


def _ui_url(kind: str, uid: Any) -> str | None:
    """The Prefect UI page of a flow or task run (``PREFECT_UI_URL``; none when the server runs without a UI)."""
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    return f"{base.rstrip('/')}/runs/{kind}/{uid}" if base else None


def _link(data: Any) -> str | None:
    """The address of a link artifact (stored as the address, or as a markdown ``[text](address)``)."""
    text = str(data or "")
    if "](" in text and text.endswith(")"):
        text = text.rsplit("](", 1)[1][:-1]
    return text if text.startswith(("http://", "https://")) else None


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _node_summary(data: Any) -> dict[str, Any] | None:
    """A node artifact's data as ``{port: summary}`` (None if it cannot be read or is too large).

    The pipeline task publishes a table (see ``openautoglm.flows.pipeline_node.read_node_report``); a JSON object
    (or a JSON string of one) is taken as it is.
    """
    try:
        if isinstance(data, str) and len(data) > MAX_SUMMARY_CHARS:
            return None
        value = json.loads(data) if isinstance(data, str) else data
        if isinstance(value, list):
            from openautoglm.flows.pipeline_node import read_node_report

            value = read_node_report(value)
    except (ValueError, TypeError, KeyError, AttributeError, ImportError):
        return None
    return value if isinstance(value, dict) else None


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
