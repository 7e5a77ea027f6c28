"""Open-AutoGLM: automated NLP with GLM models and automated graph learning, as Prefect workflows.

The SDK faces: :class:`DataLoader` (load CSV, JSONL, Parquet or SQL data), :class:`Dataset`, and
:class:`TaskPipeline` (text classification, NER and semantic matching on GLM or offline models).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from openautoglm.core.data.schema import Dataset
from openautoglm.core.errors import OpenAutoGLMError
from openautoglm.loader import DataLoader
from openautoglm.pipeline import TaskPipeline, TaskResults

try:
    __version__ = version("open-autoglm")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = ["DataLoader", "Dataset", "OpenAutoGLMError", "TaskPipeline", "TaskResults", "__version__"]
