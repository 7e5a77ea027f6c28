"""Local model folders (``model="local:/path/to/folder"``): which loader reads a folder.

A folder this project wrote holds a manifest, ``openautoglm-model.json``, whose ``kind`` names a loader in
:data:`FOLDER_KINDS` (e.g. ``crf-ner``, a CRF from ``TaskPipeline("ner").fit(...).save(folder)``). A folder without
one is read as a Hugging Face model (:func:`openautoglm.adapters.models.huggingface.load_local_model`). A new kind
registers a loader here; nothing else needs to change. ``learned-classifier``: the few-label heads of
``TaskPipeline("text_classification").fit(...).save(folder)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openautoglm.adapters.models.base import ModelBackend
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.model_names import local_folder
from openautoglm.core.registry import Registry

if TYPE_CHECKING:
    from openautoglm.adapters.models import ModelSpec

#: The manifest file naming a folder's kind.
MANIFEST = "openautoglm-model.json"

FolderLoader = Callable[["ModelSpec", Path, dict[str, Any]], ModelBackend]

#: Loaders by folder kind.
FOLDER_KINDS: Registry[FolderLoader] = Registry("model folder kind")


def folder_path(spec: ModelSpec) -> Path:
    """The folder of a ``local:`` model string."""
    return Path(local_folder(spec.model)).expanduser()


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The folder's manifest, or ``None`` when it has none."""
    file = path / MANIFEST
    if not file.is_file():
        return None
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"{file}: not valid JSON ({error.msg}).") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("kind"), str):
        raise ConfigurationError(f"{file}: a manifest must be a JSON object with a 'kind'.")
    return manifest


def load_folder(spec: ModelSpec) -> ModelBackend:
    """The backend for a ``local:`` folder: its manifest's kind, else a Hugging Face model."""
    path = folder_path(spec)
    manifest = read_manifest(path) if path.is_dir() else None
    if manifest is None:
        from openautoglm.adapters.models.huggingface import load_local_model

        return load_local_model(spec)
    return FOLDER_KINDS.resolve(manifest["kind"])(spec, path, manifest)


@FOLDER_KINDS.register("crf-ner")
def _crf_ner(spec: ModelSpec, path: Path, manifest: dict[str, Any]) -> ModelBackend:
    from openautoglm.adapters.models.crf import CrfBackend, CrfNer

    return CrfBackend(spec.model, CrfNer.load(path, manifest))


@FOLDER_KINDS.register("distilled-student")
def _distilled_student(spec: ModelSpec, path: Path, manifest: dict[str, Any]) -> ModelBackend:
    from openautoglm.adapters.models.student import load_folder_kind

    return load_folder_kind(spec, path, manifest)


@FOLDER_KINDS.register("learned-classifier")
def _learned_classifier(spec: ModelSpec, path: Path, manifest: dict[str, Any]) -> ModelBackend:
    from openautoglm.adapters.models.learned import load_learned_folder

    return load_learned_folder(spec, path, manifest)
