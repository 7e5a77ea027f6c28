"""One generic registry for named, pluggable parts (sources, rules, suites, backends, ops, searchers).

A registry maps a normalised name to a value. Registration rejects duplicate names and, when a base class
is given, values that are not subclasses or instances of it. ``resolve`` returns a value of the base type
unchanged and otherwise looks the query up by name, raising :class:`ResolveError` that lists the choices.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from openautoglm.core.errors import ConfigurationError, ResolveError

T = TypeVar("T")


def normalize_name(name: str) -> str:
    """Lower-case a name and treat ``-``, ``_`` and spaces alike: ``"Text-Classification"`` ->
    ``"text_classification"``."""
    return "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


class Registry(Generic[T]):
    """A name -> value mapping with decorator registration.

    Args:
        kind: What the registry holds, used in error messages (``"data source"``).
        base: Optional class every registered value must be (a subclass or an instance of).

    Example:
        >>> rules: Registry[Callable[[str], str]] = Registry("clean rule")
        >>> @rules.register("upper")
        ... def upper(text: str) -> str:
        ...     return text.upper()
        >>> rules.resolve("UPPER")("a")
        'A'
    """

    def __init__(self, kind: str, base: type | None = None) -> None:
        self.kind = kind
        self.base = base
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        """Decorator registering ``value`` under ``name`` (and optional aliases)."""

        def decorator(value: T) -> T:
            self.add(name, value, *aliases)
            return value

        return decorator

    def add(self, name: str, value: T, *aliases: str) -> None:
        """Register ``value`` under ``name``; raise :class:`ConfigurationError` on a duplicate or wrong type."""
        key = normalize_name(name)
        if self.base is not None and not _is_of(value, self.base):
            raise ConfigurationError(
                f"Cannot register {value!r} as {self.kind} '{key}': it is not a {self.base.__name__}."
            )
        for candidate in (key, *(normalize_name(a) for a in aliases)):
            if candidate in self._items or candidate in self._aliases:
                raise ConfigurationError(
                    f"A {self.kind} named '{candidate}' is already registered.",
                    hint="pick another name, or remove the earlier registration",
                )
        self._items[key] = value
        for alias in aliases:
            self._aliases[normalize_name(alias)] = key

    def resolve(self, query: str | T) -> T:
        """Return ``query`` unchanged if it already is a registered kind of value, else look it up by name."""
        if not isinstance(query, str):
            if self.base is not None and _is_of(query, self.base):
                return query
            raise ResolveError(f"Could not resolve {query!r}: expected a {self.kind} name (str).")
        key = normalize_name(query)
        key = self._aliases.get(key, key)
        if key in self._items:
            return self._items[key]
        choices = self.choices()
        close = difflib.get_close_matches(key, choices, n=1)
        raise ResolveError(
            f"Could not resolve '{query}' among choices {choices}",
            hint=f"did you mean '{close[0]}'?" if close else f"use one of the {self.kind} names listed",
        )

    def canonical(self, query: str) -> str:
        """The registered name behind ``query`` (an alias or a differently written name)."""
        key = normalize_name(query)
        key = self._aliases.get(key, key)
        if key not in self._items:
            self.resolve(query)  # raises with the choices
        return key

    def choices(self) -> list[str]:
        """The registered names, sorted (aliases left out)."""
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, value) pairs in registration order."""
        return iter(self._items.items())

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = normalize_name(name)
        return key in self._items or key in self._aliases

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, choices={self.choices()})"


class RegisteredName:
    """A pydantic annotation for the name of an entry in a registry: ``Annotated[str, RegisteredName(load)]``.

    A value is validated to its registered name (aliases and other spellings accepted, an unknown name is a
    validation error listing the choices); the JSON Schema is a string enum of the registered names. ``load``
    returns the registry and is called at validation and schema time, so entries registered later (a plug-in's)
    are accepted and listed. ``extra`` names are accepted and listed as well (``"generic"``).
    """

    def __init__(self, load: Callable[[], Registry[Any]], *extra: str) -> None:
        self.load = load
        self.extra = tuple(normalize_name(name) for name in extra)

    def canonical(self, name: str) -> str:
        key = normalize_name(name)
        return key if key in self.extra else self.load().canonical(name)

    def names(self) -> list[str]:
        return [*(name for name, _ in self.load().items()), *self.extra]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.canonical, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {**handler(schema), "enum": self.names()}


def _is_of(value: Any, base: type) -> bool:
    if isinstance(value, type):
        return issubclass(value, base)
    return isinstance(value, base)
