"""The NLP routes, generated from one table: per task type a single and a batch route (``/classify``,
``/classify/batch``, ``/ner``, ...), each checked the same way (token, role, rate limit, caps) and answered in
the envelope. Adding a task type to the API is one :class:`TaskRoute` row (and its request/response schemas).

No ``from __future__ import annotations`` here: FastAPI reads the endpoints' body types from their annotations.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ValidationError

from openautoglm.core.nlp.types import Example, RowResult, TaskConfig
from openautoglm.serve import schemas as s
from openautoglm.serve.auth import Principal
from openautoglm.serve.envelope import ApiError, Code, Envelope, error_responses, ok
from openautoglm.serve.service import Item, Task
from openautoglm.serve.settings import ServeSettings

PUBLIC_ERRORS = (400, 401, 403, 413, 422, 429, 500)
MODEL_ERRORS = (*PUBLIC_ERRORS, 502, 503, 504)


def task_config(task_type: Any, **options: Any) -> TaskConfig:
    """A TaskConfig from request options; a bad combination is a 422, never a 500."""
    try:
        # TaskConfig checks the template the way the model fills it in: {text} / {text_pair} are replaced and
        # any other brace is literal (JSON in an instruction is fine); nothing is formatted here.
        config = TaskConfig(task_type=task_type, **{k: v for k, v in options.items() if v is not None})
    except ValidationError as error:  # what the validators said, not pydantic's "1 validation error for ..."
        message = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors()[:3])
        raise ApiError(Code.INVALID, f"invalid task options: {message}") from None
    except (ValueError, KeyError, IndexError, AttributeError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ApiError(Code.INVALID, f"invalid task options: {message}") from None
    return config


def _classify_config(body: Any, settings: ServeSettings) -> TaskConfig:
    labels = body.labels or list(settings.default_labels)
    if len(labels) > settings.max_labels:
        raise ApiError(Code.INVALID, f"{len(labels)} labels; at most {settings.max_labels}")
    return task_config(
        "text_classification",
        labels=tuple(labels),
        prompt_template=body.prompt_template,
        verbalizers=tuple(body.verbalizers.items()) if body.verbalizers else None,
        few_shot=tuple(Example(text=f.text, label=f.label) for f in body.few_shot or ()) or None,
    )


def _ner_config(body: Any, settings: ServeSettings) -> TaskConfig:
    return task_config("ner", entity_types=tuple(body.entity_types) if body.entity_types else None)


def _match_config(body: Any, settings: ServeSettings) -> TaskConfig:
    return task_config(
        "semantic_matching", labels=tuple(body.labels) if body.labels else None, threshold=body.threshold
    )


def _label(r: RowResult) -> dict[str, Any]:
    return {
        "label": r.prediction if isinstance(r.prediction, str) else None,
        "score": r.score,
        "status": r.status,
        "reason": r.reason,
        "answered_by": _answered_by(r),
        "model_version": _model_version(r),
    }


def _answered_by(r: RowResult) -> str | None:
    value = r.extra.get("answered_by")
    return value if isinstance(value, str) else None


def _model_version(r: RowResult) -> str | None:
    value = r.extra.get("model_version")
    return value if isinstance(value, str) else None


def _entities(r: RowResult) -> dict[str, Any]:
    found = r.prediction if isinstance(r.prediction, tuple) else ()
    return {
        "entities": [e.as_dict() for e in found],
        "status": r.status,
        "reason": r.reason,
        "model_version": _model_version(r),
    }


@dataclass(frozen=True)
class TaskRoute:
    """One task type of the API: its paths, schemas, how a request becomes a config and items, and how a
    result is shown."""

    task: Task
    path: str
    request: type[BaseModel]
    batch_request: type[BaseModel]
    data: type[BaseModel]
    batch_data: type[BaseModel]
    summaries: tuple[str, str]
    config: Callable[[Any, ServeSettings], TaskConfig]
    items: Callable[[Any], list[Item]]
    batch_items: Callable[[Any], list[Item]]
    view: Callable[[RowResult], dict[str, Any]]


TASK_ROUTES: tuple[TaskRoute, ...] = (
    TaskRoute(
        "classify",
        "/classify",
        s.ClassifyRequest,
        s.ClassifyBatchRequest,
        s.ClassifyData,
        s.ClassifyBatchData,
        ("Classify one text", "Classify several texts"),
        _classify_config,
        lambda body: [(body.text, None)],
        lambda body: [(t, None) for t in body.texts],
        _label,
    ),
    TaskRoute(
        "ner",
        "/ner",
        s.NerRequest,
        s.NerBatchRequest,
        s.NerData,
        s.NerBatchData,
        ("Named entities of one text", "Named entities of several texts"),
        _ner_config,
        lambda body: [(body.text, None)],
        lambda body: [(t, None) for t in body.texts],
        _entities,
    ),
    TaskRoute(
        "match",
        "/match",
        s.MatchRequest,
        s.MatchBatchRequest,
        s.MatchData,
        s.MatchBatchData,
        ("Semantic similarity of a pair", "Semantic similarity of several pairs"),
        _match_config,
        lambda body: [(body.text, body.text_pair)],
        lambda body: [(p.text, p.text_pair) for p in body.pairs],
        _label,
    ),
)


@dataclass(frozen=True)
class RouteContext:
    """What the generated endpoints need from the app: its settings, the guard, the model service."""

    settings: ServeSettings
    guard: Callable[[str], Callable[..., Awaitable[Principal]]]
    #: (task, config, items, subject) -> results; the subject (the token's issuer and subject) gets a fair share.
    predict: Callable[[Task, TaskConfig, list[Item], str], Awaitable[list[RowResult]]]
    model_name: Callable[[Task], str]

    def caps(self, count: int, texts: list[str], body: Any = None) -> None:
        """The configured caps, before any model call: items, the longest text (few-shot texts included) and the
        characters of every string in the request together."""
        settings = self.settings
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


def _characters(value: Any) -> int:
    """Characters of every string (keys included) in a dumped request."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_characters(k) + _characters(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return sum(_characters(v) for v in value)
    return 0


def _texts(items: Sequence[Item]) -> list[str]:
    return [t for item in items for t in item if t is not None]


def _failed(result: RowResult) -> None:
    if result.status == "error":
        raise ApiError(Code.UPSTREAM, "the model call failed", data={"reason": result.reason[:300]})


def _add(router: APIRouter, route: TaskRoute, ctx: RouteContext) -> None:
    async def one(
        body: route.request,  # type: ignore[name-defined]
        principal: Annotated[Principal, Depends(ctx.guard(route.task))],
    ) -> dict[str, Any]:
        items = route.items(body)
        ctx.caps(1, _texts(items), body)
        (result,) = await ctx.predict(route.task, route.config(body, ctx.settings), items, principal.owner)
        _failed(result)
        return ok({**route.view(result), "model": ctx.model_name(route.task)})

    async def many(
        body: route.batch_request,  # type: ignore[name-defined]
        principal: Annotated[Principal, Depends(ctx.guard(f"{route.task}_batch"))],
    ) -> dict[str, Any]:
        items = route.batch_items(body)
        ctx.caps(len(items), _texts(items), body)
        results = await ctx.predict(route.task, route.config(body, ctx.settings), items, principal.owner)
        if all(r.status == "error" for r in results):
            _failed(results[0])
        return ok({"model": ctx.model_name(route.task), "results": [route.view(r) for r in results]})

    for path, endpoint, data, summary, name in (
        (route.path, one, route.data, route.summaries[0], route.task),
        (f"{route.path}/batch", many, route.batch_data, route.summaries[1], f"{route.task}_batch"),
    ):
        router.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            response_model=Envelope[data],  # type: ignore[valid-type]
            responses=error_responses(*MODEL_ERRORS),
            tags=["nlp"],
            summary=summary,
            name=name,
        )


def nlp_router(ctx: RouteContext, prefix: str = "/api/v1") -> APIRouter:
    """The single and batch routes of every task type in :data:`TASK_ROUTES`."""
    router = APIRouter(prefix=prefix)
    for route in TASK_ROUTES:
        _add(router, route, ctx)
    return router
