"""Model strings: the one normal form that the job confinement check and the backend resolver both read.

A model string comes from a user, a flow parameter or a job's caller. Two readers that disagree about it are a hole
(a check that looks for ``local:`` while the loader lower-cases ``LOCAL:`` lets a caller load any folder), so every
reader calls :func:`normalize_model` (parameter models do it at validation through :data:`ModelString`) and asks
:func:`model_scheme` which kind of string it is.

The normal form: Unicode NFKC (full-width letters and compatibility forms become their plain letters), no
surrounding whitespace, and a known scheme (``local:``, ``mlflow:``) or API family (``glm-``, ``chatglm``)
lower-cased. What follows a scheme (a folder, a registered name) is kept as written.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator

from openautoglm.core.errors import ConfigurationError

Scheme = Literal["local", "mlflow"]
#: Schemes that name something to load: a folder on the worker (``local:``), a registered model (``mlflow:``).
SCHEMES: tuple[Scheme, ...] = ("local", "mlflow")
#: Families of the Zhipu API, matched case-insensitively and written lower-case.
API_FAMILIES = ("glm-", "chatglm")
#: The longest model string taken (a folder path included).
MAX_CHARS = 4096


def normalize_model(model: str) -> str:
    """``model`` in normal form (see the module docstring).

    Raises:
        ConfigurationError: Empty, too long, or holding a control character (a NUL byte in a path included).
    """
    text = unicodedata.normalize("NFKC", model)
    if len(text) > MAX_CHARS:
        raise ConfigurationError(f"The model string is longer than {MAX_CHARS} characters.")
    if any(unicodedata.category(ch) == "Cc" for ch in text):  # a newline or tab too, wherever it stands
        raise ConfigurationError("The model string holds a control character.", hint="write it on one line")
    text = text.strip()
    if not text:
        raise ConfigurationError("The model string is empty.", hint="use e.g. local-auto, glm-4 or local:/folder")
    head, sep, rest = text.partition(":")
    if sep and head.strip().lower() in SCHEMES:
        return f"{head.strip().lower()}:{rest.strip()}"
    lowered = text.lower()
    if lowered.startswith(API_FAMILIES):
        return lowered
    return text


def model_scheme(model: str) -> Scheme | None:
    """``local`` or ``mlflow`` for a string that names a folder or a registered model; ``None`` otherwise."""
    head, sep, _ = normalize_model(model).partition(":")
    return head if sep and head in SCHEMES else None


def local_folder(model: str) -> str:
    """The folder a ``local:`` model string names (as written: not yet resolved).

    Raises:
        ConfigurationError: Not a ``local:`` model string.
    """
    normal = normalize_model(model)
    if model_scheme(normal) != "local":
        raise ConfigurationError(f"'{normal}' is not a local: model string.", hint="write local:/path/to/folder")
    return normal.partition(":")[2]


def _as_model_name(value: str) -> str:
    try:
        return normalize_model(value)
    except ConfigurationError as error:
        raise ValueError(error.message) from None


#: A model string field: validated into its normal form (a plain ``str``: values are written to YAML and JSON).
ModelString = Annotated[str, AfterValidator(_as_model_name)]
