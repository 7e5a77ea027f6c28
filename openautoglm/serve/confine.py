"""What a caller of ``POST /api/v1/jobs`` may ask a worker to do: the job confinement policy.

A job's parameters come from an untrusted caller and run on a worker that holds the deployment's data, files and
secrets. Before a flow run is created the parameters are

1. merged into the deployment's own parameters (nested objects field by field; an object whose ``kind`` changes is
   replaced whole),
2. validated against the flow's parameter model with unknown fields refused (422; nothing is created),
3. confined: every value the caller changed from the deployment's is checked —

   - files read (source paths, graph tables, a Planetoid root, an optimised prompt file, a ``local:`` model folder)
     must resolve, symlinks followed, under one of the configured data roots (``OPENAUTOGLM_SERVE_DATA_ROOTS``);
     relative paths are taken from the first root and sent to the worker resolved, so it reads what was checked;
   - a registered model (``mlflow:/<name>/<version>`` or ``mlflow:/<name>@<alias>``) is named, never located: a
     model string with the ``mlflow:`` prefix in any other form (a path, a ``runs:/`` or ``file:`` URI) is refused;
     a ``distill`` job may register a new version but not move an alias (``distill.alias``);
   - a registered prompt (``prompts:/<name>/<version>`` or ``prompts:/<name>@<alias>``) is named the same way, never
     a path; an ``optimize_prompt`` job may register a new prompt version but not move an alias (``alias``);
   - output folders are the job's own: a caller may not set ``output_dir`` (the worker makes a new folder);
   - databases only through named connections configured on the server (``OPENAUTOGLM_SERVE_SQL_CONNECTIONS``):
     the caller writes ``{"kind": "sql", "connection": "<name>", "query": ...}`` (or ``output_connection`` for
     results) and the server fills in the URL and the password's environment variable; a caller-chosen URL,
     password variable, Secret block, credentials block or model endpoint is refused, since each would let the
     caller send a worker's secret to a host of their choosing.

Deployment values the caller leaves alone are the operator's own configuration and are not re-checked.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.model_names import local_folder, model_scheme
from openautoglm.core.nlp.distill import parse_registry_ref
from openautoglm.core.prompt.reference import is_prompt_ref, parse_prompt_ref
from openautoglm.core.registry import normalize_name
from openautoglm.core.workflow import WorkflowError, WorkflowGraph, check_graph
from openautoglm.serve.envelope import ApiError, Code

if TYPE_CHECKING:
    from prefect import Flow

#: A flow's name as a job may give it: a Python identifier (never a path or a dotted name).
FLOW_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

#: Fields that route a worker's secret somewhere: never taken from a caller.
SECRET_ROUTES = frozenset(
    {"url", "password_env", "password_block", "output_sql_url", "output_password_env", "credentials_block", "base_url"}
)
#: Fields holding a model string (their values are in normal form once validated: ``ModelString``).
MODEL_FIELDS = frozenset({"model", "proposer", "teacher"})
#: Fields naming a file the worker reads (strings; ``Path`` fields are recognised by type).
READ_STRINGS = frozenset({"nodes", "edges", "prompt"})
#: Fields that would repoint what others load: an alias of a registered model (``mlflow:/name@production`` may be
#: what an API serves), which registered model a training writes to, and an admin's forced promotion. A job may
#: register a new version; only the deployment moves an alias or names the model.
OPERATOR_ONLY = frozenset({"alias", "promote_alias", "registered_model", "force"})
#: An MLflow run id (32 hex digits) is not a path.
RUN_ID = re.compile(r"^[0-9a-f]{32}$")
#: Artifacts that carry rows of the input data; returned only to callers who may read that data.
ROW_ARTIFACTS = frozenset({"task-sample", "validation", "prompt-candidates", "optimised-prompt"})


@dataclass(frozen=True)
class SqlConnection:
    """A database the server lets jobs read or write: a URL without a password, and where the password is."""

    url: str
    password_env: str | None = None

    def __post_init__(self) -> None:
        # The form a source's URL takes once validated (driver filled in, no password): what a job's typed
        # parameters then hold, compared with this value by the confinement check.
        from openautoglm.adapters.sources import SqlSource

        object.__setattr__(self, "url", SqlSource(url=self.url, query="t").url)


@dataclass(frozen=True)
class JobPolicy:
    """The configured limits of jobs."""

    data_roots: tuple[Path, ...] = ()
    connections: Mapping[str, SqlConnection] = field(default_factory=dict)

    def resolve_read(self, where: str, value: str | Path, *, relative: bool = True) -> Path:
        """``value`` resolved under a data root, or 422 naming the parameter.

        Args:
            relative: Take a relative path from the first root; else a relative path is refused (a run's recorded
                parameters are relative to its worker's folder, which the API cannot see).
        """
        if not self.data_roots:
            raise _invalid(
                where, "jobs may not name files: no data roots are configured (OPENAUTOGLM_SERVE_DATA_ROOTS)"
            )
        try:
            raw = Path(value).expanduser()
            if not raw.is_absolute() and not relative:
                raise _invalid(where, f"'{value}' is relative to the worker's folder")
            candidate = raw if raw.is_absolute() else self.data_roots[0] / raw
            resolved = candidate.resolve()  # follows symlinks: a link out of a root resolves out of it
        except (ValueError, OSError, RuntimeError):  # a NUL byte, a symlink loop, a name too long: never a 500
            raise _invalid(where, "not a readable path under the data roots") from None
        for root in self.data_roots:
            if resolved.is_relative_to(root.resolve()):
                return resolved
        roots = ", ".join(str(r) for r in self.data_roots)
        raise _invalid(where, f"'{value}' is outside the data roots ({roots})")


def _invalid(where: str, message: str) -> ApiError:
    return ApiError(Code.INVALID, f"parameter {where}: {message}", data={"parameter": where})


def merge(defaults: Any, overrides: Any) -> Any:
    """Overrides laid over defaults: objects field by field, an object whose ``kind`` changes replaced whole."""
    if not isinstance(defaults, dict) or not isinstance(overrides, dict):
        return overrides
    if "kind" in overrides and overrides.get("kind") != defaults.get("kind"):
        return dict(overrides)
    merged = dict(defaults)
    for key, value in overrides.items():
        merged[key] = merge(defaults[key], value) if key in defaults else value
    return merged


@functools.cache
def flow_object(flow: str) -> Flow[Any, Any] | None:
    """The Prefect flow named ``flow`` among :mod:`openautoglm.flows`' modules (``flows/<flow>.py`` first), or None.

    Each flow declares its parameter model once, as the annotation of its ``params`` argument; the confinement
    reads it from there (:func:`params_model`), so a new flow needs no entry here.
    """
    if not FLOW_NAME.match(flow):
        return None
    from prefect import Flow

    import openautoglm.flows as package

    names = [m.name for m in pkgutil.iter_modules(package.__path__)]
    for name in sorted(names, key=lambda n: n != flow):  # its own module first: no other is imported then
        module = importlib.import_module(f"{package.__name__}.{name}")
        for value in vars(module).values():
            if isinstance(value, Flow) and value.name == flow:
                return value
    return None


def params_model(flow: str) -> type[BaseModel] | None:
    """The parameter model of the flow named ``flow`` (its ``params`` argument's annotation), or None."""
    found = flow_object(flow)
    if found is None:
        return None
    model = typing.get_type_hints(found.fn).get("params")
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def flow_names() -> list[str]:
    """Every flow in :mod:`openautoglm.flows` whose parameters are one pydantic model (what a job may run)."""
    from prefect import Flow

    import openautoglm.flows as package

    found: set[str] = set()
    for module in pkgutil.iter_modules(package.__path__):
        for value in vars(importlib.import_module(f"{package.__name__}.{module.name}")).values():
            if isinstance(value, Flow) and params_model(value.name) is not None:
                found.add(value.name)
    return sorted(found)


#: What a named connection fills in, by the key that names it. A caller who names a connection and also writes
#: one of these fields (in any order, at any depth) is refused: the connection replaces them whole.
CONNECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "connection": ("url", "password_env", "password_block"),
    "output_connection": ("output_sql_url", "output_password_env"),
}


def _refuse_mixed_connections(value: Any, path: tuple[str, ...] = ()) -> None:
    """422 where an object of the caller's names a connection and also sets a field the connection fills in."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_mixed_connections(item, (*path, str(i)))
        return
    if not isinstance(value, dict):
        return
    for key, filled in CONNECTION_FIELDS.items():
        if key in value:
            clash = sorted(set(filled) & set(value))
            if clash:
                raise _invalid(".".join((*path, clash[0])), f"set by the named connection ({key}); leave it out")
    for key, item in value.items():
        _refuse_mixed_connections(item, (*path, str(key)))


def _connections(value: Any, policy: JobPolicy, path: tuple[str, ...], named: dict[tuple[str, ...], Any]) -> Any:
    """Named connections replaced by their URL and password variable (the deployment's connection fields under
    them dropped, so nothing of two databases is mixed); the filled-in places and values remembered."""
    if isinstance(value, list):
        return [_connections(v, policy, (*path, str(i)), named) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key not in CONNECTION_FIELDS:
            out[key] = _connections(item, policy, (*path, key), named)
    for key, filled in CONNECTION_FIELDS.items():
        if key not in value:
            continue
        item = value[key]
        if not isinstance(item, str) or item not in policy.connections:
            known = sorted(policy.connections) or "none configured (OPENAUTOGLM_SERVE_SQL_CONNECTIONS)"
            raise _invalid(".".join((*path, key)), f"unknown connection {item!r}; connections: {known}")
        conn = policy.connections[item]
        for name in filled:
            out.pop(name, None)
        url, password = filled[0], filled[1]
        out[url], out[password] = conn.url, conn.password_env
        named[(*path, url)], named[(*path, password)] = conn.url, conn.password_env
    return out


def _leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _leaves(getattr(value, name), (*path, name))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, str(i)))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, str(key)))
    else:
        yield path, value


_UNSET = object()


def _declared_defaults(model: type[BaseModel], path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """The defaults the parameter model itself declares, by path (trusted like the deployment's values: an
    operator-only field left at its declared default was not chosen by the caller)."""
    found: dict[tuple[str, ...], Any] = {}
    for name, info in model.model_fields.items():
        if info.is_required():
            continue
        found.update(_leaves(info.get_default(call_default_factory=True), (*path, name)))
    return found


def _validate(model: type[BaseModel], flow: str, params: Any) -> BaseModel:
    try:
        chosen = model.model_validate(params)
    except ValidationError as error:
        errors = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]} for e in error.errors()[:20]]
        first = f": {'.'.join(errors[0]['loc'])}: {errors[0]['msg']}" if errors else ""
        raise ApiError(
            Code.INVALID, f"the parameters do not fit the {flow} flow{first}", data={"errors": errors}
        ) from None
    graph = getattr(chosen, "graph", None)
    if isinstance(graph, WorkflowGraph):
        from openautoglm.stages import signatures

        try:
            check_graph(graph, signatures())
        except WorkflowError as error:
            raise ApiError(Code.INVALID, str(error)) from None
    return chosen


def _typed(value: Any) -> Any:
    """A workflow graph's node parameters as their stages' models, so paths and secret routes are recognised."""
    graph = getattr(value, "graph", None)
    if not isinstance(graph, WorkflowGraph):
        return value
    from openautoglm.stages import catalogue

    stages = catalogue()
    nodes = [
        {"id": n.id, "stage": n.stage, "params": stages[normalize_name(n.stage)].check_params(n.params)}
        for n in graph.nodes
    ]
    fields = {name: getattr(value, name) for name in type(value).model_fields if name != "graph"}
    return {**fields, "graph": {"nodes": nodes, "edges": graph.edges}}


def _is_model_string(name: str, value: Any) -> bool:
    """A model string: a string in a field that names a model (``ModelSpec.model``, ``proposer``, ``teacher``)."""
    return name in MODEL_FIELDS and isinstance(value, str)


def _confine(
    chosen: BaseModel,
    default: BaseModel | None,
    policy: JobPolicy,
    named: Mapping[tuple[str, ...], Any],
    relative: bool = True,
    reads_only: bool = False,
) -> dict[tuple[str, ...], Path | str]:
    """Checks every caller-changed value; returns the read paths (and ``local:`` model strings) to send resolved.
    ``reads_only``: look only at what is read (a recorded run's output folder is where it wrote, not a file it
    read). ``named``: the places a named connection filled in, with the server's values."""
    before = dict(_leaves(_typed(default))) if default is not None else {}
    declared = _declared_defaults(type(chosen)) if isinstance(chosen, BaseModel) else {}
    resolved: dict[tuple[str, ...], Path | str] = {}
    leaves = list(_leaves(_typed(chosen)))
    sql_tables = {p[:-1] for p, v in leaves if p[-1] == "url" and v}
    for path, value in leaves:
        if path in before and before[path] == value:
            continue  # the deployment's own value
        if value is None or value == "":
            continue
        name, where = path[-1], ".".join(path)
        if name in SECRET_ROUTES:
            if path in named and named[path] == value:
                continue  # the server's named connection, as the server filled it in
            raise _invalid(where, "chosen by the server for jobs (use a named connection for databases)")
        if name in OPERATOR_ONLY and declared.get(path, _UNSET) != value:
            raise _invalid(where, "set by the deployment only: it repoints what other runs and the API load")
        if isinstance(value, Path):
            if name.startswith("output"):
                if reads_only:
                    continue
                raise _invalid(where, "jobs write only to their own output folder; leave it unset")
            resolved[path] = policy.resolve_read(where, value, relative=relative)
        elif name in READ_STRINGS and isinstance(value, str):
            if name == "prompt" and RUN_ID.match(value):
                continue
            if name == "prompt" and is_prompt_ref(value):
                try:  # a registered prompt by name and version or alias; never a path or another URI
                    parse_prompt_ref(value)
                except ConfigurationError as error:
                    raise _invalid(where, error.message) from None
                continue
            if name in ("nodes", "edges") and path[:-1] in sql_tables:
                continue  # a table or query on a named connection
            resolved[path] = policy.resolve_read(where, value, relative=relative)
        elif _is_model_string(name, value):
            try:  # the one reading of a model string that the backend resolver also makes
                scheme = model_scheme(value)
                if scheme == "local":
                    folder = policy.resolve_read(where, local_folder(value), relative=relative)
                    resolved[path] = f"local:{folder}"
                elif scheme == "mlflow":  # a registered model by name and version or alias; never a path or URI
                    parse_registry_ref(value)
            except ConfigurationError as error:
                raise _invalid(where, error.message) from None
    return resolved


def _put(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node: Any = tree
    for key in path[:-1]:  # a stage parameter left at its default is not in the caller's dict yet
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if isinstance(node, list):
        node[int(path[-1])] = value
    else:
        node[path[-1]] = value


def confine_params(params: BaseModel, policy: JobPolicy) -> BaseModel:
    """A stage's parameters as a job sends them: checked by the run's own confinement (every value as if the
    caller chose it) and every read path resolved under the data roots; :class:`ApiError` 422 naming the refused
    parameter (``source.path``...). The dry run and a save check a workflow's nodes with this."""
    resolved = _confine(params, None, policy, {})
    out = params.model_dump(mode="json")
    for path, value in resolved.items():
        _put(out, path, str(value))
    return type(params).model_validate(out)


def resolved_params(params: BaseModel, policy: JobPolicy) -> BaseModel | None:
    """:func:`confine_params`, or None where the policy refuses a value: what the API may pre-flight on its own
    host without telling a caller anything about files outside the data roots."""
    try:
        return confine_params(params, policy)
    except ApiError:
        return None


def prepare(flow: str, defaults: Mapping[str, Any], overrides: Mapping[str, Any], policy: JobPolicy) -> dict[str, Any]:
    """The parameters to create the flow run with, or :class:`ApiError` 422 saying which one is refused.

    Args:
        flow: The deployment's flow name.
        defaults: The deployment's parameters (trusted: set by whoever deployed it).
        overrides: The caller's parameters.
        policy: Data roots and named connections.
    """
    schema_model = params_model(flow)
    if schema_model is None:
        raise ApiError(Code.NOT_FOUND, f"flow '{flow}' cannot be run as a job through the API")
    unknown = sorted(set(overrides) - {"params"})
    if unknown:
        raise _invalid(unknown[0], f"unknown parameter; the {flow} flow takes 'params'")
    base = dict(defaults.get("params") or {})
    caller = overrides.get("params") or {}
    if not isinstance(caller, dict):
        raise _invalid("params", "must be an object")
    _refuse_mixed_connections(caller)
    named: dict[tuple[str, ...], Any] = {}
    merged = _connections(merge(base, caller), policy, (), named)
    chosen = _validate(schema_model, flow, merged)
    try:
        default = schema_model.model_validate(base) if base else None
    except ValidationError:
        default = None
    resolved = _confine(chosen, default, policy, named)
    # What was checked is what is sent: the typed values (a graph's node parameters as their stages read them).
    out = to_jsonable_python(_typed(chosen))
    for path, value in resolved.items():
        _put(out, path, str(value))
    return {"params": out}


def may_read_rows(flow: str, parameters: Mapping[str, Any], policy: JobPolicy) -> bool:
    """Whether every file a run read lies under the data roots (so its rows may be shown to the caller)."""
    model = params_model(flow)
    if model is None or not policy.data_roots:
        return False
    try:
        params = model.model_validate(parameters.get("params") or {})
    except ValidationError:
        return False
    try:
        _confine(params, None, policy, {}, relative=False, reads_only=True)
    except ApiError:
        return False
    return True
