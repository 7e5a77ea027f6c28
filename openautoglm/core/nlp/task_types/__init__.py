"""Task types: one registered object per task (see :mod:`.base`). A new task type is one module here, imported
below."""

from openautoglm.core.nlp.task_types import classification, matching, ner  # noqa: F401  (registers them)
from openautoglm.core.nlp.task_types.base import TASK_TYPES, TaskKind, task_kind, task_type_names

__all__ = ["TASK_TYPES", "TaskKind", "task_kind", "task_type_names"]
