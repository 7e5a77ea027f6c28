"""References to prompts in MLflow's prompt registry: ``prompts:/<name>/<version>`` or ``prompts:/<name>@<alias>``.

Pure parsing and naming rules, no MLflow import. A reference may come from an untrusted caller (a job's ``prompt``
parameter), so it can only *name* a registered prompt version: paths, ``runs:/`` and other URIs are refused here,
and resolving it is the registry's business (:mod:`openautoglm.adapters.prompt_registry`).

Names follow MLflow's prompt rule (letters, digits, ``_ . -``), capped at 128 characters and starting with a letter
or digit; versions are positive integers; aliases are a letter then letters, digits, ``_ -`` (up to 64), and
``latest`` (MLflow's own: the newest version) may be read but not set.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from openautoglm.core.errors import ConfigurationError

#: The prefix of prompt registry references (MLflow's own URI scheme for prompts).
PREFIX = "prompts:"
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}"
_ALIAS = r"[A-Za-z][A-Za-z0-9_\-]{0,63}"
_REF = re.compile(rf"prompts:/(?P<name>{_NAME})(?:/(?P<version>[1-9][0-9]{{0,8}})|@(?P<alias>{_ALIAS}))")
_HINT = "use prompts:/<name>/<version> or prompts:/<name>@<alias> (a name of letters, digits, _ . -)"
#: Aliases MLflow reserves: ``latest`` and version-like ``v1``, ``V2``...
_RESERVED = re.compile(r"^(latest|[vV][0-9]+)$", re.IGNORECASE)


@dataclass(frozen=True)
class PromptRef:
    """A registered prompt version: by number or by alias."""

    name: str
    version: int | None = None
    alias: str | None = None

    @property
    def uri(self) -> str:
        """``prompts:/name/3`` or ``prompts:/name@alias`` (what MLflow's ``load_prompt`` takes)."""
        where = f"/{self.version}" if self.version is not None else f"@{self.alias}"
        return f"{PREFIX}/{self.name}{where}"

    def __str__(self) -> str:
        return self.uri


def is_prompt_ref(value: str) -> bool:
    """Whether a string uses the prompt registry prefix (well-formed or not)."""
    return value.strip().lower().startswith(PREFIX)


def parse_prompt_ref(value: str) -> PromptRef:
    """``prompts:/<name>/<version>`` or ``prompts:/<name>@<alias>``; anything else raises.

    Raises:
        ConfigurationError: Not one of the two forms (the message is one line; the hint says the forms).
    """
    match = _REF.fullmatch(value)  # fullmatch: "$" would let a trailing newline through
    if match is None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ConfigurationError(f"{shown!r} is not a registered prompt reference.", hint=_HINT)
    version = match.group("version")
    return PromptRef(match.group("name"), int(version) if version else None, match.group("alias"))


def check_prompt_name(name: str) -> str:
    """``name`` if the prompt registry may take it and a reference can name it.

    Raises:
        ConfigurationError: Any other name.
    """
    if re.fullmatch(_NAME, name) is None:
        raise ConfigurationError(
            f"{name!r} cannot be a registered prompt name.",
            hint="use letters, digits, _ . - (up to 128 characters, starting with a letter or digit)",
        )
    return name


def check_alias(alias: str) -> str:
    """``alias`` if it may be pointed at a version (``latest`` and ``v1``-like names are MLflow's own).

    Raises:
        ConfigurationError: Any other alias.
    """
    if re.fullmatch(_ALIAS, alias) is None or _RESERVED.match(alias):
        raise ConfigurationError(
            f"{alias!r} cannot be a prompt alias.",
            hint="use a letter then letters, digits, _ - (up to 64), e.g. production or candidate; not latest or v1",
        )
    return alias


def default_prompt_name(experiment: str, task_type: str) -> str:
    """The registry name an optimisation registers under when none is given: ``<experiment>.<task type>``
    (``optimize_prompt.text_classification`` by default). An experiment name a prompt name cannot hold (spaces,
    Chinese, ``/``) keeps what it can and gains 8 hex digits of its SHA-256, so different experiments stay apart."""
    base = re.sub(r"[^A-Za-z0-9_.\-]+", "-", experiment).strip("_.-")
    if base != experiment:
        base = f"{base or 'prompt'}-{hashlib.sha256(experiment.encode('utf-8')).hexdigest()[:8]}"
    return check_prompt_name(f"{base[: 127 - len(task_type)]}.{task_type}")
