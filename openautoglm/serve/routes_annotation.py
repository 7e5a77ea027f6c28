"""Annotation routes (``/api/v1/annotation/...``): projects, items, grants, the labelling queue, agreement and
adjudication, exports and rounds, over the annotation store (:mod:`openautoglm.adapters.annotation_store`).

Who may do what (the token's roles pick the routes, :data:`~openautoglm.serve.auth.ROUTE_ROLES`; a grant picks the
projects, :mod:`openautoglm.adapters.annotation_access`):

- ``admin``: everything on every project: create projects, add items, grant and revoke, label, adjudicate, export,
  start rounds.
- ``annotator``: the projects granted to them as ``annotator`` only: the next item with the model's pre-label, answer,
  skip, undo, and the project's status. Their answers are recorded under the token's ``sub``.
- ``reviewer``: the projects granted to them as ``reviewer`` only: the status, the disagreements queue,
  adjudication (the adjudicated answer wins) and exports. A role of its own, not ``operator``: settling labels is a
  judgement about the data, not the right to run jobs and workflows, and an operator should not change a training
  set by holding that right, nor a reviewer start jobs.

A project a caller holds no grant on answers 404 as one that does not exist (its name leaks nothing). Every
request's cost is bounded: items per request (:data:`MAX_ITEMS`), entities per answer, rows per export page, the
body size (``OPENAUTOGLM_SERVE_MAX_BODY_BYTES``); the store's typed errors become envelopes (:data:`STORE_ERRORS`).

No ``from __future__ import annotations`` here: FastAPI reads the endpoints' types from their annotations.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from openautoglm.adapters.annotation_access import SUBJECT_MAX, AnnotationAccess, Grant, GrantRole
from openautoglm.adapters.annotation_store import (
    NAME_PATTERN,
    AnnotationStore,
    InvalidAnswer,
    Item,
    ItemNotFound,
    NewAnnotation,
    NewItem,
    Prediction,
    ProjectExists,
    ProjectNotFound,
    ProjectSpec,
    StoreBusy,
    StoreUnavailable,
)
from openautoglm.core.errors import OpenAutoGLMError
from openautoglm.core.nlp.types import Entity
from openautoglm.serve.auth import Principal
from openautoglm.serve.envelope import ApiError, Code, Envelope, error_responses, ok
from openautoglm.serve.guard import Guard
from openautoglm.usecases.annotation import AnnotationRoundParams, RoundSummary, annotation_round

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Items one request may add; more go in further requests.
MAX_ITEMS = 1000
#: Entities one answer may hold.
MAX_ENTITIES = 500
#: Rows per export page at most.
MAX_EXPORT_ROWS = 1000
#: Disagreements per page at most.
MAX_DISAGREEMENTS = 200
#: Seconds a project's status is reused (answers recorded by this process drop it at once).
STATUS_TTL_S = 2.0
#: Skipped items an annotator's queue steps over at most (older skips come back into the queue).
MAX_SKIPS = 500

ProjectName = Annotated[str, Path(pattern=NAME_PATTERN, description="the project's name")]
Subject = Annotated[str, Path(min_length=1, max_length=SUBJECT_MAX, description="a token subject (sub)")]
READ_ERRORS = (401, 403, 404, 422, 429, 500, 503)
WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 422, 429, 500, 503)

#: The store's typed errors -> the envelope code they are answered with (the first class that matches wins).
STORE_ERRORS: tuple[tuple[type[OpenAutoGLMError], Code], ...] = (
    (ProjectNotFound, Code.NOT_FOUND),
    (ItemNotFound, Code.NOT_FOUND),
    (ProjectExists, Code.CONFLICT),
    (InvalidAnswer, Code.INVALID),
    (StoreBusy, Code.DEPENDENCY_DOWN),
    (StoreUnavailable, Code.DEPENDENCY_DOWN),
)


# --- bodies and answers ---------------------------------------------------------------------------------------


class EntityIn(BaseModel):
    """An entity span of an item's text: ``text == item.text[start:end]`` (the store checks it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1, max_length=1000)
    type: str = Field(min_length=1, max_length=200)
    start: int = Field(ge=0, le=1_000_000)
    end: int = Field(ge=1, le=1_000_000)


class AnswerIn(BaseModel):
    """An answer to one item: a label (classification) or the item's entities (NER; ``[]`` = none)."""

    model_config = ConfigDict(extra="forbid")

    item_id: int = Field(ge=1)
    label: str | None = Field(default=None, min_length=1, max_length=200)
    entities: list[EntityIn] | None = Field(default=None, max_length=MAX_ENTITIES)
    seconds: float = Field(default=0.0, ge=0.0, le=86_400.0, description="time spent on the item")

    @model_validator(mode="after")
    def _one_answer(self) -> "AnswerIn":
        if (self.label is None) == (self.entities is None):
            raise ValueError("give either label (classification) or entities (NER), not both or neither")
        return self

    @property
    def answer(self) -> str | tuple[Entity, ...]:
        if self.label is not None:
            return self.label
        return tuple(Entity(text=e.text, type=e.type, start=e.start, end=e.end) for e in self.entities or ())


class ItemRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: int = Field(ge=1)


class ItemsIn(BaseModel):
    """Rows to label: ``text`` with where it came from; a text the project holds already is not added again."""

    model_config = ConfigDict(extra="forbid")

    items: list[NewItem] = Field(min_length=1, max_length=MAX_ITEMS)


class ItemOut(BaseModel):
    id: int
    text: str
    source: str
    row_id: str


class PreLabel(BaseModel):
    """The model's answer shown with an item: its label and confidence (classification) or entities (NER)."""

    model: str
    model_version: str
    round: int
    label: str | None
    entities: list[dict[str, Any]] | None
    confidence: float | None = Field(description="the label's score, when the model gave scores")
    scores: dict[str, float]


class AnswerOut(BaseModel):
    label: str | None
    entities: list[dict[str, Any]] | None
    adjudicated: bool = False


class Task(BaseModel):
    """One item to label, with the model's pre-label and (after an undo) the caller's own answer."""

    item: ItemOut | None = Field(description="null: nothing left to label in this project for you")
    prelabel: PreLabel | None = None
    answer: AnswerOut | None = Field(default=None, description="your answer, when the item was answered already")
    undone: Literal["answer", "skip"] | None = Field(default=None, description="what the undo took back")


class ProjectOut(BaseModel):
    name: str
    task_type: str
    labels: list[str]
    entity_types: list[str]
    guidelines: str
    roles: list[str] = Field(description="what the caller may do here: annotator, reviewer, admin")


class ProjectList(BaseModel):
    projects: list[ProjectOut]


class CurvePoint(BaseModel):
    round: int
    labels: int
    score: float | None


class ModelOut(BaseModel):
    name: str
    version: str
    aliases: list[str] = Field(default_factory=list)


class StatusOut(BaseModel):
    """How far a project is, for the progress bar and the learning curve."""

    project: str
    task_type: str
    items: int
    labelled: int = Field(description="items with at least one answer")
    target: int = Field(description="items to label: the queued and evaluation items (all items when none queued)")
    annotations: int
    annotators: int
    mine: int = Field(description="items the caller answered")
    kappa: float | None = Field(description="Cohen's kappa (two annotators) or Fleiss' (more) on double-labelled items")
    kappa_method: str | None = None
    kappa_items: int = 0
    per_label: dict[str, float | None] = Field(default_factory=dict)
    disagreements: int = Field(description="items waiting for a reviewer")
    model: ModelOut | None = Field(
        description="the newest trained model (else the model that pre-labelled the latest round)"
    )
    curve: list[CurvePoint] = Field(description="evaluation score per round and label count")


class DisagreementOut(BaseModel):
    item: ItemOut
    answers: list[dict[str, Any]] = Field(description="[{annotator, label | entities}]")
    prelabel: PreLabel | None = None


class DisagreementList(BaseModel):
    disagreements: list[DisagreementOut]
    total: int


class GrantOut(BaseModel):
    project: str
    subject: str
    role: str
    granted_by: str


class GrantList(BaseModel):
    grants: list[GrantOut]


class ExportPage(BaseModel):
    project: str
    digest: str = Field(description="SHA-256 of the whole label snapshot")
    total: int
    offset: int
    rows: list[dict[str, Any]]
    next_offset: int | None


class Added(BaseModel):
    added: int
    duplicates: int
    ids: list[int]


# --- the context the routes share ----------------------------------------------------------------------------


@dataclass
class AnnotationContext:
    """The annotation store (its URL: ``OPENAUTOGLM_ANNOTATIONS_URL``) and the grants beside it, opened on first
    use so an API that never serves annotation opens no database."""

    url: str | None = None
    #: Projects with a round running in this process: one at a time each (a second is 409), so the model time
    #: a caller can start is bounded.
    running: set[str] = field(default_factory=set)
    #: Project -> (when, its status without the caller's count): see :func:`_status`.
    statuses: dict[str, tuple[float, "StatusOut"]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @cached_property
    def store(self) -> AnnotationStore:
        return AnnotationStore(self.url)

    @cached_property
    def access(self) -> AnnotationAccess:
        return AnnotationAccess(self.store)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` in the thread pool (the store is synchronous), its typed errors as envelopes."""
        try:
            return await run_in_threadpool(fn, *args, **kwargs)
        except OpenAutoGLMError as error:
            raise _as_api_error(error) from error

    async def roles(self, principal: Principal, project: str) -> frozenset[str]:
        """What ``principal`` may do on ``project``: ``admin`` (the token's role) or the grants held; 404 when
        nothing (as for a project that does not exist)."""
        if "admin" in principal.roles:
            await self.call(self.store.get_project, project)
            return frozenset({"admin", "annotator", "reviewer"})
        held = frozenset(await self.call(self.access.roles_on, project, principal.sub)) & principal.roles
        if not held:
            raise _not_found(project)
        return held

    async def require(self, principal: Principal, project: str, role: GrantRole) -> None:
        """404 unless ``principal`` is an admin or holds ``role`` on ``project`` (a grant and the token's role)."""
        if role not in await self.roles(principal, project):
            raise _not_found(project)


def _not_found(project: str) -> ApiError:
    return ApiError(Code.NOT_FOUND, f"No annotation project named '{project}' (or none you may work on).")


def _as_api_error(error: OpenAutoGLMError) -> ApiError:
    code = next((code for kind, code in STORE_ERRORS if isinstance(error, kind)), Code.INVALID)
    message = error.message if error.hint is None else f"{error.message} ({error.hint})"
    return ApiError(code, message)


def _item(item: Item) -> ItemOut:
    return ItemOut(id=item.id, text=item.text, source=item.source, row_id=item.row_id)


def _prelabel(prediction: Prediction | None) -> PreLabel | None:
    if prediction is None:
        return None
    confidence = prediction.scores.get(prediction.label) if prediction.label is not None else None
    return PreLabel(
        model=prediction.model,
        model_version=prediction.model_version,
        round=prediction.round,
        label=prediction.label,
        entities=None if prediction.entities is None else [e.as_dict() for e in prediction.entities],
        confidence=confidence,
        scores=prediction.scores,
    )


def _answer(label: str | None, entities: tuple[Entity, ...] | None, adjudicated: bool = False) -> AnswerOut:
    return AnswerOut(
        label=label,
        entities=None if entities is None else [e.as_dict() for e in entities],
        adjudicated=adjudicated,
    )


# --- the synchronous work of each route (run in the thread pool) ---------------------------------------------


def _project_out(store: AnnotationStore, name: str, roles: frozenset[str]) -> ProjectOut:
    spec = store.get_project(name)
    return ProjectOut(
        name=spec.name,
        task_type=spec.task_type,
        labels=list(spec.labels),
        entity_types=list(spec.entity_types),
        guidelines=spec.guidelines,
        roles=sorted(roles),
    )


def _task(store: AnnotationStore, project: str, item: Item | None) -> Task:
    if item is None:
        return Task(item=None)
    found = store.predictions(project, item_ids=[item.id], latest=True)
    return Task(item=_item(item), prelabel=_prelabel(found[0] if found else None))


def _next(ctx: AnnotationContext, project: str, annotator: str) -> Task:
    skipped = {s.item_id for s in ctx.access.skipped(project, annotator)[:MAX_SKIPS]}
    chosen = ctx.store.next_items(project, annotator, limit=1, exclude=skipped)  # leased to the caller
    return _task(ctx.store, project, chosen[0] if chosen else None)


def _record(ctx: AnnotationContext, project: str, annotator: str, body: AnswerIn, *, adjudicated: bool) -> Task:
    """Store the answer through the use case that also emits the event ``train_round``'s trigger counts (when a
    Prefect server is named: ``PREFECT_API_URL``)."""
    from openautoglm.usecases.annotation import record_labels

    item = ctx.store.get_item(project, body.item_id)  # 404 for an item of another project
    answer = NewAnnotation(
        item_id=body.item_id, annotator=annotator, answer=body.answer, seconds=body.seconds, adjudicated=adjudicated
    )
    record_labels(project, [answer], store=ctx.store)
    with ctx.lock:
        ctx.statuses.pop(project, None)
    ctx.access.unskip(project, body.item_id, annotator)
    label = body.answer if isinstance(body.answer, str) else None
    return Task(item=_item(item), answer=_answer(label, None if label else body.answer, adjudicated))  # type: ignore[arg-type]


def _skip(ctx: AnnotationContext, project: str, annotator: str, item_id: int) -> Task:
    ctx.store.get_item(project, item_id)  # 404 for an item of another project
    ctx.access.skip(project, item_id, annotator)
    ctx.store.release(project, item_id, annotator)  # another annotator may take it at once
    return _next(ctx, project, annotator)


def _undo(ctx: AnnotationContext, project: str, annotator: str) -> Task:
    """Take back the caller's last action: a skip goes back into the queue; an answer is deleted (it counts no
    more) and its item is shown again with the answer taken back, for the caller to answer again. Adjudications
    are the review page's, not taken back here."""
    skips = ctx.access.skipped(project, annotator)
    answers = [a for a in ctx.store.annotations(project, annotator=annotator) if not a.adjudicated]
    last_answer = max(answers, key=lambda a: (a.updated_at, a.id), default=None)
    last_skip = skips[0] if skips else None
    if last_skip is not None and (last_answer is None or last_skip.skipped_at >= last_answer.updated_at):
        ctx.access.unskip(project, last_skip.item_id, annotator)
        task = _task(ctx.store, project, ctx.store.get_item(project, last_skip.item_id))
        return task.model_copy(update={"undone": "skip"})
    if last_answer is None:
        return _next(ctx, project, annotator)
    deleted = ctx.store.delete_annotation(project, last_answer.item_id, annotator)  # leased back to the caller
    with ctx.lock:
        ctx.statuses.pop(project, None)
    task = _task(ctx.store, project, ctx.store.get_item(project, deleted.item_id))
    return task.model_copy(update={"undone": "answer", "answer": _answer(deleted.label, deleted.entities)})


def _status(ctx: AnnotationContext, project: str, who: str) -> StatusOut:
    """The project's status (kept :data:`STATUS_TTL_S` seconds, and dropped when this process records an answer:
    every page polls it, and agreement and disagreements read every answer), with the caller's own count."""
    now = time.monotonic()
    with ctx.lock:
        held = ctx.statuses.get(project)
    if held is None or now - held[0] > STATUS_TTL_S:
        held = (now, _project_status(ctx.store, project))
        with ctx.lock:
            ctx.statuses[project] = held
    return held[1].model_copy(update={"mine": len(ctx.store.annotations(project, annotator=who))})


def _project_status(store: AnnotationStore, project: str) -> StatusOut:
    spec = store.get_project(project)
    counts = store.status(project)
    agreement = store.agreement(project)
    disputes = store.disagreements(project)
    trainings = store.trainings(project)
    model: ModelOut | None = None
    if trainings:
        last = trainings[-1]
        model = ModelOut(name=last.model_name, version=last.model_version, aliases=list(last.aliases))
    else:
        rounds = store.rounds(project)
        if rounds:
            model = ModelOut(name=rounds[-1].model, version=rounds[-1].model_version)
    return StatusOut(
        project=project,
        task_type=spec.task_type,
        items=counts.items,
        labelled=counts.labelled_items,
        target=(counts.queued + counts.eval_items) or counts.items,
        annotations=counts.annotations,
        annotators=counts.annotators,
        mine=0,
        kappa=agreement.kappa,
        kappa_method=agreement.method,
        kappa_items=agreement.items,
        per_label=dict(agreement.per_label),
        disagreements=len(disputes),
        model=model,
        curve=[CurvePoint(round=t.round, labels=t.label_count, score=t.score) for t in trainings],
    )


def _disagreements(store: AnnotationStore, project: str, limit: int) -> DisagreementList:
    disputes = store.disagreements(project)
    page = disputes[:limit]
    predictions = (
        {p.item_id: p for p in store.predictions(project, item_ids=[d.item.id for d in page], latest=True)}
        if page
        else {}
    )
    return DisagreementList(
        total=len(disputes),
        disagreements=[
            DisagreementOut(
                item=_item(d.item),
                answers=[
                    {"annotator": a.annotator, **_answer(a.label, a.entities).model_dump(exclude={"adjudicated"})}
                    for a in d.annotations
                ],
                prelabel=_prelabel(predictions.get(d.item.id)),
            )
            for d in page
        ],
    )


def _export(store: AnnotationStore, project: str, offset: int, limit: int) -> ExportPage:
    snapshot = store.label_snapshot(project)
    rows = snapshot.rows[offset : offset + limit]
    end = offset + len(rows)
    return ExportPage(
        project=project,
        digest=snapshot.digest,
        total=len(snapshot.rows),
        offset=offset,
        rows=[row.model_dump(mode="json") for row in rows],
        next_offset=end if end < len(snapshot.rows) else None,
    )


def _projects(ctx: AnnotationContext, principal: Principal) -> ProjectList:
    if "admin" in principal.roles:
        everyone = frozenset({"admin", "annotator", "reviewer"})
        return ProjectList(projects=[_project_out(ctx.store, p.name, everyone) for p in ctx.store.list_projects()])
    held = ctx.access.projects_of(principal.sub)
    out = []
    for name, roles in sorted(held.items()):
        usable = frozenset(roles) & principal.roles
        if usable:
            try:
                out.append(_project_out(ctx.store, name, usable))
            except ProjectNotFound:  # a grant outliving its project
                continue
    return ProjectList(projects=out)


def _round(ctx: AnnotationContext, params: AnnotationRoundParams) -> RoundSummary:
    with ctx.lock:
        if params.project in ctx.running:
            raise ApiError(Code.CONFLICT, f"A round of '{params.project}' is running already: wait for it to end.")
        ctx.running.add(params.project)
    try:
        ctx.store.get_project(params.project)
        return annotation_round(params)
    finally:
        with ctx.lock:
            ctx.running.discard(params.project)


# --- the router -----------------------------------------------------------------------------------------------


def annotation_router(guard: Guard, ctx: AnnotationContext | None = None, prefix: str = "/api/v1") -> APIRouter:
    """The ``/annotation`` routes over ``ctx`` (default: the store of ``OPENAUTOGLM_ANNOTATIONS_URL``)."""
    ctx = ctx or AnnotationContext()
    router = APIRouter(prefix=f"{prefix}/annotation", tags=["annotation"])
    base = "/projects/{project}"

    @router.get(
        "/projects",
        response_model=Envelope[ProjectList],
        responses=error_responses(401, 403, 429, 500, 503),
        summary="The projects you may work on (admins: all)",
    )
    async def annotation_projects(
        principal: Annotated[Principal, Depends(guard("annotation_projects"))],
    ) -> dict[str, Any]:
        return ok(await ctx.call(_projects, ctx, principal))

    @router.post(
        "/projects",
        response_model=Envelope[ProjectOut],
        responses=error_responses(*WRITE_ERRORS),
        summary="Create a project (admin)",
    )
    async def annotation_create(
        body: ProjectSpec, principal: Annotated[Principal, Depends(guard("annotation_create"))]
    ) -> dict[str, Any]:
        await ctx.call(ctx.store.create_project, body)
        return ok(await ctx.call(_project_out, ctx.store, body.name, frozenset({"admin"})))

    @router.get(
        base,
        response_model=Envelope[ProjectOut],
        responses=error_responses(*READ_ERRORS),
        summary="A project you may work on",
    )
    async def annotation_project(
        project: ProjectName, principal: Annotated[Principal, Depends(guard("annotation_project"))]
    ) -> dict[str, Any]:
        roles = await ctx.roles(principal, project)
        return ok(await ctx.call(_project_out, ctx.store, project, roles))

    @router.post(
        f"{base}/items",
        response_model=Envelope[Added],
        responses=error_responses(*WRITE_ERRORS),
        summary=f"Add up to {MAX_ITEMS} rows to label (admin)",
    )
    async def annotation_items_add(
        project: ProjectName, body: ItemsIn, principal: Annotated[Principal, Depends(guard("annotation_items_add"))]
    ) -> dict[str, Any]:
        added = await ctx.call(ctx.store.add_items, project, body.items)
        return ok(Added(added=added.added, duplicates=added.duplicates, ids=list(added.ids)))

    @router.get(
        f"{base}/grants",
        response_model=Envelope[GrantList],
        responses=error_responses(*READ_ERRORS),
        summary="Who may label or review the project (admin)",
    )
    async def annotation_grants(
        project: ProjectName, principal: Annotated[Principal, Depends(guard("annotation_grants"))]
    ) -> dict[str, Any]:
        await ctx.call(ctx.store.get_project, project)
        grants = await ctx.call(ctx.access.grants, project)
        return ok(GrantList(grants=[GrantOut(**g.model_dump(exclude={"granted_at"})) for g in grants]))

    @router.put(
        f"{base}/grants/{{role}}/{{subject}}",
        response_model=Envelope[GrantOut],
        responses=error_responses(*WRITE_ERRORS),
        summary="Let a token subject label (annotator) or adjudicate (reviewer) the project (admin)",
    )
    async def annotation_grant(
        project: ProjectName,
        role: GrantRole,
        subject: Subject,
        principal: Annotated[Principal, Depends(guard("annotation_grant"))],
    ) -> dict[str, Any]:
        grant = Grant(project=project, subject=subject, role=role, granted_by=principal.sub)
        stored = await ctx.call(ctx.access.grant, grant)
        return ok(GrantOut(**stored.model_dump(exclude={"granted_at"})))

    @router.delete(
        f"{base}/grants/{{role}}/{{subject}}",
        response_model=Envelope[dict[str, bool]],
        responses=error_responses(*WRITE_ERRORS),
        summary="Take a grant back (admin)",
    )
    async def annotation_revoke(
        project: ProjectName,
        role: GrantRole,
        subject: Subject,
        principal: Annotated[Principal, Depends(guard("annotation_revoke"))],
    ) -> dict[str, Any]:
        return ok({"revoked": await ctx.call(ctx.access.revoke, project, subject, role)})

    @router.get(
        f"{base}/next",
        response_model=Envelope[Task],
        responses=error_responses(*READ_ERRORS),
        summary="Your next item to label, with the model's pre-label",
    )
    async def annotation_next(
        project: ProjectName, principal: Annotated[Principal, Depends(guard("annotation_next"))]
    ) -> dict[str, Any]:
        await ctx.require(principal, project, "annotator")
        return ok(await ctx.call(_next, ctx, project, principal.sub))

    @router.post(
        f"{base}/answers",
        response_model=Envelope[Task],
        responses=error_responses(*WRITE_ERRORS),
        summary="Answer an item (again: your new answer replaces the old)",
    )
    async def annotation_answer(
        project: ProjectName, body: AnswerIn, principal: Annotated[Principal, Depends(guard("annotation_answer"))]
    ) -> dict[str, Any]:
        await ctx.require(principal, project, "annotator")
        return ok(await ctx.call(_record, ctx, project, principal.sub, body, adjudicated=False))

    @router.post(
        f"{base}/skip",
        response_model=Envelope[Task],
        responses=error_responses(*WRITE_ERRORS),
        summary="Skip an item for now; answers the next one",
    )
    async def annotation_skip(
        project: ProjectName, body: ItemRef, principal: Annotated[Principal, Depends(guard("annotation_skip"))]
    ) -> dict[str, Any]:
        await ctx.require(principal, project, "annotator")
        return ok(await ctx.call(_skip, ctx, project, principal.sub, body.item_id))

    @router.post(
        f"{base}/undo",
        response_model=Envelope[Task],
        responses=error_responses(*WRITE_ERRORS),
        summary="Take back your last skip, or your last answer (deleted; its item is shown again to answer anew)",
    )
    async def annotation_undo(
        project: ProjectName, principal: Annotated[Principal, Depends(guard("annotation_undo"))]
    ) -> dict[str, Any]:
        await ctx.require(principal, project, "annotator")
        return ok(await ctx.call(_undo, ctx, project, principal.sub))

    @router.get(
        f"{base}/status",
        response_model=Envelope[StatusOut],
        responses=error_responses(*READ_ERRORS),
        summary="Progress, agreement (kappa), the current model and the learning curve",
    )
    async def annotation_status(
        project: ProjectName, principal: Annotated[Principal, Depends(guard("annotation_status"))]
    ) -> dict[str, Any]:
        await ctx.roles(principal, project)
        return ok(await ctx.call(_status, ctx, project, principal.sub))

    @router.get(
        f"{base}/disagreements",
        response_model=Envelope[DisagreementList],
        responses=error_responses(*READ_ERRORS),
        summary="Items whose annotators disagree, waiting for a reviewer",
    )
    async def annotation_disagreements(
        project: ProjectName,
        principal: Annotated[Principal, Depends(guard("annotation_disagreements"))],
        limit: Annotated[int, Query(ge=1, le=MAX_DISAGREEMENTS)] = 50,
    ) -> dict[str, Any]:
        await ctx.require(principal, project, "reviewer")
        return ok(await ctx.call(_disagreements, ctx.store, project, limit))

    @router.post(
        f"{base}/adjudications",
        response_model=Envelope[Task],
        responses=error_responses(*WRITE_ERRORS),
        summary="Settle an item: the adjudicated answer wins over every other",
    )
    async def annotation_adjudicate(
        project: ProjectName, body: AnswerIn, principal: Annotated[Principal, Depends(guard("annotation_adjudicate"))]
    ) -> dict[str, Any]:
        await ctx.require(principal, project, "reviewer")
        return ok(await ctx.call(_record, ctx, project, principal.sub, body, adjudicated=True))

    @router.get(
        f"{base}/export",
        response_model=Envelope[ExportPage],
        responses=error_responses(*READ_ERRORS),
        summary=f"The label snapshot, {MAX_EXPORT_ROWS} rows a page at most",
    )
    async def annotation_export(
        project: ProjectName,
        principal: Annotated[Principal, Depends(guard("annotation_export"))],
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_EXPORT_ROWS)] = MAX_EXPORT_ROWS,
    ) -> dict[str, Any]:
        await ctx.require(principal, project, "reviewer")
        return ok(await ctx.call(_export, ctx.store, project, offset, limit))

    @router.post(
        "/rounds",
        response_model=Envelope[RoundSummary],
        responses=error_responses(*WRITE_ERRORS),
        summary="Start an annotation round: pre-label the pool and queue the rows to label next (admin)",
        description="The body is the use case's parameter model (`AnnotationRoundParams`). The model that "
        "pre-labels is the registered model at `alias` (else the zero-shot cold start): an explicit `model` is "
        "for the CLI only. One round per project at a time (409); the first round loads the models (~40 s).",
    )
    async def annotation_round_start(
        body: AnnotationRoundParams, principal: Annotated[Principal, Depends(guard("annotation_round"))]
    ) -> dict[str, Any]:
        if body.model is not None:
            raise ApiError(
                Code.INVALID,
                "A round started over the API pre-labels with the registered model (registered_model, alias), "
                "never a model named in the request: leave out 'model' (or run `openautoglm annotate round`).",
            )
        return ok(await ctx.call(_round, ctx, body))

    return router
