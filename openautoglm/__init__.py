"""Open-AutoGLM: automated NLP with GLM models and automated graph learning, as Prefect workflows.

The SDK faces: :class:`DataLoader` (load CSV, JSONL, Parquet or SQL data), :class:`Dataset`,
:class:`TaskPipeline` (text classification, NER and semantic matching on GLM or offline models),
:class:`PromptOptimizer` / :class:`OptimisedPrompt` (prompt optimisation), and
:class:`AutoGraph` (GNN architecture search). They are imported on first use, so ``import openautoglm`` (and the
CLI) does not pay for torch or transformers until they are needed.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("open-autoglm")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

_FACES = {
    "AutoGraph": "openautoglm.autograph",
    "DataLoader": "openautoglm.loader",
    "Dataset": "openautoglm.core.data.schema",
    "OpenAutoGLMError": "openautoglm.core.errors",
    "OptimisedPrompt": "openautoglm.optimize",
    "PromptOptimizer": "openautoglm.optimize",
    "TaskPipeline": "openautoglm.pipeline",
    "TaskResults": "openautoglm.pipeline",
}

if TYPE_CHECKING:
    from openautoglm.autograph import AutoGraph
    from openautoglm.core.data.schema import Dataset
    from openautoglm.core.errors import OpenAutoGLMError
    from openautoglm.loader import DataLoader
    from openautoglm.optimize import OptimisedPrompt, PromptOptimizer
    from openautoglm.pipeline import TaskPipeline, TaskResults


def __getattr__(name: str) -> Any:
    if name in _FACES:
        value = getattr(import_module(_FACES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'openautoglm' has no attribute {name!r}")


__all__ = [
    "AutoGraph",
    "DataLoader",
    "Dataset",
    "OpenAutoGLMError",
    "OptimisedPrompt",
    "PromptOptimizer",
    "TaskPipeline",
    "TaskResults",
    "__version__",
]
