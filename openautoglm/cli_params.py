"""Typer options generated from a use case's pydantic parameter model: each setting is declared once, in the model.

A command names the fields it exposes, by the option's Python name and the field's dotted path in the model
(``{"labels": "task.labels", "model": "model.model"}``); :func:`options_from` turns each into a Typer option whose
help is the field's description, whose default is the model's (a parent's default instance wins, so ``--model``
defaults to what ``model: ModelSpec = ModelSpec(model=...)`` says), whose bounds are its ``ge``/``le`` and whose
choices are its ``Literal`` values. The command receives the values as :class:`FieldValues` and builds the model
from :meth:`FieldValues.nested`.

Why not a library: pydantic-typer spells nested fields ``--params.task.labels`` and pydanclick is for Click and
prefixes nested names (``--task-labels``), taking containers as JSON; both would rename every existing option.
Lists here are comma-separated (``--labels 正面,负面``) and pairs ``old=new,old2=new2``, as the CLI always took them.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import annotated_types
import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from typer.core import TyperCommand, TyperGroup

F = TypeVar("F", bound=Callable[..., Any])
#: The parameter a generated command receives Typer's context by (to tell the options given from the defaults).
CONTEXT = "_typer_context"
Kind = Literal["bool", "int", "float", "path", "str", "choice", "list", "pairs", "unsupported"]


def _strip(annotation: Any) -> Any:
    """``X`` from ``Annotated[X, ...]`` and ``X | None``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            rest = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (through ``Annotated`` and ``| None``), else ``None``."""
    plain = _strip(annotation)
    return plain if isinstance(plain, type) and issubclass(plain, BaseModel) else None


def _kind(annotation: Any) -> tuple[Kind, tuple[str, ...]]:
    plain = _strip(annotation)
    origin = typing.get_origin(plain)
    if origin is Literal:
        return "choice", tuple(str(v) for v in typing.get_args(plain))
    if origin is dict:
        return "pairs", ()
    if origin in (list, tuple):
        inner = _strip(typing.get_args(plain)[0]) if typing.get_args(plain) else str
        if typing.get_origin(inner) is tuple:
            return "pairs", ()
        return ("list" if inner in (str, int, float) else "unsupported"), ()
    simple: dict[Any, Kind] = {bool: "bool", int: "int", float: "float", Path: "path", str: "str"}
    return simple.get(plain, "unsupported"), ()


def field_at(model: type[BaseModel], path: Sequence[str]) -> tuple[FieldInfo, Any]:
    """The field at ``path`` in ``model`` and its default (``PydanticUndefined`` when required); a parent field's
    default instance gives its children's defaults.

    Raises:
        KeyError: No such field (the message names the path and the model).
    """
    current: type[BaseModel] | None = model
    parent_default: Any = None
    info: FieldInfo | None = None
    default: Any = PydanticUndefined
    for i, name in enumerate(path):
        if current is None or name not in current.model_fields:
            raise KeyError(f"{model.__name__} has no field {'.'.join(path[: i + 1])}")
        info = current.model_fields[name]
        if isinstance(parent_default, BaseModel):
            default = getattr(parent_default, name)
        else:
            default = info.get_default(call_default_factory=True)
        parent_default = default
        current = model_in(info.annotation)
    if info is None:
        raise KeyError(f"{model.__name__}: an empty field path")
    return info, default


@dataclass(frozen=True)
class Setting:
    """One option: its Python name, the field's path, and what the field declares."""

    param: str
    path: tuple[str, ...]
    info: FieldInfo
    default: Any
    flags: tuple[str, ...] = ()
    parents: tuple[Any, ...] = ()

    @property
    def kind(self) -> tuple[Kind, tuple[str, ...]]:
        return _kind(self.info.annotation)

    @property
    def option_name(self) -> str:
        return "--" + self.param.replace("_", "-")

    def cli_default(self) -> Any:
        kind, _ = self.kind
        value = self.default
        if value is PydanticUndefined:
            return ...
        if value is None:
            return None
        if kind == "list":
            return ",".join(str(v) for v in value)
        if kind == "pairs":
            items = value.items() if isinstance(value, Mapping) else value
            return ",".join(f"{k}={v}" for k, v in items)
        return value

    def parameter(self) -> inspect.Parameter:
        kind, choices = self.kind
        python: dict[Kind, Any] = {"bool": bool, "int": int, "float": float, "path": Path}
        cli_type = python.get(kind, str)
        default = self.cli_default()
        extra: dict[str, Any] = {}
        for bound in self.info.metadata:
            if isinstance(bound, annotated_types.Ge):
                extra["min"] = bound.ge
            elif isinstance(bound, annotated_types.Le):
                extra["max"] = bound.le
        if choices:
            cli_type = Literal[choices]  # Typer offers and checks the choices
        help_ = self.info.description or ""
        if kind == "list":
            help_ += " (comma-separated)"
        elif kind == "pairs":
            help_ += " (key=value,key2=value2)"
        if kind == "bool" and any("/" in f for f in self.flags):
            decls: tuple[str, ...] = self.flags
        elif kind == "bool":
            decls = (f"{self.option_name}/--no-{self.option_name[2:]}", *self.flags)
        else:
            decls = (self.option_name, *self.flags)
        option = typer.Option(*decls, help=help_.strip(), **extra)
        annotation = Annotated[cli_type if default is ... or default is not None else cli_type | None, option]  # type: ignore[valid-type]
        return inspect.Parameter(self.param, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)

    def value(self, raw: Any) -> Any:
        """The field's value from what the option received (``PydanticUndefined``: leave the model's default)."""
        kind, _ = self.kind
        if kind not in ("list", "pairs") or raw is None:
            return raw
        items = [v.strip() for v in str(raw).split(",") if v.strip()]
        if not items:
            return PydanticUndefined
        if kind == "list":
            return items
        pairs = []
        for item in items:
            if "=" not in item:
                raise typer.BadParameter(f"'{item}' is not key=value", param_hint=self.option_name)
            key, val = item.split("=", 1)
            pairs.append((key.strip(), val.strip()))
        return dict(pairs) if typing.get_origin(_strip(self.info.annotation)) is dict else pairs


@dataclass(frozen=True)
class FieldValues:
    """What the generated options received, by option name; :meth:`nested` shapes them as the model's input."""

    settings: tuple[Setting, ...]
    raw: Mapping[str, Any]
    given: frozenset[str]

    def __getitem__(self, param: str) -> Any:
        return self.raw[param]

    def nested(self, **extra: Any) -> dict[str, Any]:
        """The options the user gave, as a nested dict by field path (left out: the model's defaults and
        validators decide); ``extra``: top-level fields the command computes."""
        out: dict[str, Any] = {}
        for setting in self.settings:
            if setting.param not in self.given:
                continue
            value = setting.value(self.raw[setting.param])
            if value is PydanticUndefined:
                continue
            where = out
            for depth, name in enumerate(setting.path[:-1]):
                if name not in where:  # a parent with a default instance: its other fields stay as they are
                    parent = setting.parents[depth]
                    where[name] = parent.model_dump() if isinstance(parent, BaseModel) else {}
                where = where[name]
            where[setting.path[-1]] = value
        for setting in self.settings:  # a required nested model the user set nothing of: its own defaults
            if len(setting.path) > 1 and setting.parents[0] is PydanticUndefined:
                out.setdefault(setting.path[0], {})
        return {**out, **extra}

    def option_for(self, loc: Sequence[Any]) -> str | None:
        """The option that sets the field at a validation error's location, if one does."""
        path = tuple(str(p) for p in loc)
        for setting in self.settings:
            if path[: len(setting.path)] == setting.path:
                return setting.option_name
        return None


def settings_of(
    model: type[BaseModel],
    rename: Mapping[str, str] | None = None,
    exclude: Sequence[str] = (),
    flags: Mapping[str, Sequence[str]] | None = None,
) -> tuple[Setting, ...]:
    """One :class:`Setting` per field a command line can hold, nested models flattened, in the model's order.

    A field of a nested model is named by its own name unless ``rename`` (dotted path -> option name) says
    otherwise. Fields a command line cannot hold (a union of models such as a source or a graph, a list of models
    such as few-shot examples) are left to the command, as are those in ``exclude`` (dotted paths).

    Raises:
        TypeError: Two fields would make the same option (rename one).
    """
    rename, flags = rename or {}, flags or {}
    out: list[Setting] = []

    def walk(current: type[BaseModel], prefix: tuple[str, ...], parents: tuple[Any, ...]) -> None:
        for name in current.model_fields:
            path = (*prefix, name)
            dotted = ".".join(path)
            if dotted in exclude:
                continue
            info, default = field_at(model, path)
            inner = model_in(info.annotation)
            if inner is not None:
                walk(inner, path, (*parents, default))
            elif _kind(info.annotation)[0] != "unsupported":
                param = rename.get(dotted, name)
                out.append(Setting(param, path, info, default, tuple(flags.get(param, ())), parents))

    walk(model, (), ())
    seen: dict[str, str] = {}
    for setting in out:
        dotted = ".".join(setting.path)
        if setting.param in seen:
            raise TypeError(f"{model.__name__}: {seen[setting.param]} and {dotted} both make --{setting.param}")
        seen[setting.param] = dotted
    return tuple(out)


def options_from(
    model: type[BaseModel],
    rename: Mapping[str, str] | None = None,
    exclude: Sequence[str] = (),
    flags: Mapping[str, Sequence[str]] | None = None,
) -> Callable[[F], F]:
    """Add ``model``'s fields (see :func:`settings_of`) as options to a Typer command, which takes them as
    ``values: FieldValues``; its own parameters come first in ``--help``.

    Raises:
        TypeError: An option would be declared twice.
    """
    settings = settings_of(model, rename, exclude, flags)

    def decorate(func: F) -> F:
        own = inspect.signature(func, eval_str=True)
        kept = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own.parameters.values() if p.name != "values"]
        clash = {p.name for p in kept} & {s.param for s in settings}
        if clash:
            raise TypeError(f"{func.__name__}: options declared twice: {sorted(clash)}")
        context = inspect.Parameter(CONTEXT, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
        parameters = [*kept, *(s.parameter() for s in settings), context]

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            context: typer.Context = kwargs.pop(CONTEXT)
            raw = {s.param: kwargs.pop(s.param) for s in settings}
            given = [name for name in raw if getattr(context.get_parameter_source(name), "name", "") != "DEFAULT"]
            return func(**kwargs, values=FieldValues(settings, raw, frozenset(given)))

        del command.__wrapped__  # Typer reads the signature below
        command.__signature__ = own.replace(parameters=parameters, return_annotation=None)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in parameters}
        command.settings = settings  # type: ignore[attr-defined]
        return typing.cast(F, command)

    return decorate


class LazyGroup(TyperGroup):
    """A command group whose model-generated commands are built when run (or their ``--help`` is asked for).

    A parameter model's module pulls in the data, model or graph stack (seconds); building each command only when
    it is resolved keeps ``openautoglm --help`` and ``--version`` instant. The group's own help lists them from
    their docstrings without building them.
    """

    lazy: ClassVar[dict[str, tuple[str, Callable[[], Any]]]] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return [*(n for n in self.lazy if n not in self.commands), *super().list_commands(ctx)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        return TyperCommand(cmd_name, help=self.lazy[cmd_name][0])  # a listing only: resolve_command builds

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] in self.lazy and args[0] not in self.commands:
            self.add_command(self.build(args[0]), args[0])
        return super().resolve_command(ctx, args)

    def build(self, name: str) -> Any:
        """The command ``name``, built now."""
        return self.lazy[name][1]()


def lazy_group() -> type[LazyGroup]:
    """A :class:`LazyGroup` class with its own table of commands (pass it as ``typer.Typer(cls=...)``)."""
    return type("CommandGroup", (LazyGroup,), {"lazy": {}})


def model_command(
    group: type[LazyGroup],
    name: str,
    model: str,
    rename: Mapping[str, str] | None = None,
    exclude: Sequence[str] = (),
    flags: Mapping[str, Sequence[str]] | None = None,
    **typer_options: Any,
) -> Callable[[F], F]:
    """Register a command whose options come from the parameter model ``model`` (``"module:Name"``, imported when
    the command is built; see :func:`options_from`)."""

    def decorate(func: F) -> F:
        def build() -> Any:
            module, _, attr = model.partition(":")
            params_model = getattr(importlib.import_module(module), attr)
            one = typer.Typer(rich_markup_mode="rich", pretty_exceptions_enable=False, add_completion=False)
            one.command(name, **typer_options)(options_from(params_model, rename, exclude, flags)(func))
            return typer.main.get_command(one)

        summary = (inspect.getdoc(func) or "").split("\n\n")[0].replace("\n", " ")
        group.lazy[name] = (summary, build)
        return func

    return decorate
