"""What a task type is: one object that owns its prompts, answer format, parsing, metrics and defaults.

The framework's NLP code (prompts, parsing, evaluation, candidate scoring, the prompt searches, parameter
checks) asks the task type instead of branching on its name. A new task type is one module in this package:
a :class:`TaskKind` subclass registered in :data:`TASK_TYPES`, imported by ``task_types/__init__.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from openautoglm.core.registry import Registry

if TYPE_CHECKING:
    from openautoglm.core.nlp.types import Example, RowResult, TaskConfig, Value

#: The answer-format line every task's rules start with.
JSON_ONLY = "只输出一个JSON对象，不要输出其他内容。"


class TaskKind(ABC):
    """One task type.

    Attributes:
        name: The registered name (``TaskConfig.task_type``).
        description: One line for listings.
        default_template: The instruction used when the user gives none (``{text}``, and ``{text_pair}`` when
            ``needs_pair``).
        templates: The prompt-template library the template search tries (the first is always tried).
        words: The task's name in the meta-prompt that asks a generative model for new instructions.
        needs_pair: Rows carry a second text (``text_pair``; templates must contain ``{text_pair}``).
        closed_labels: Answers come from a fixed label set (``labels`` is required, the validation suite checks
            the label column against it, splits are stratified by label, verbalisers can be searched).
        labelled_demos: Few-shot demonstrations can be drawn per label from a training set.
        offline_model: The offline backend to suggest when a remote model cannot run.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    default_template: ClassVar[str]
    templates: ClassVar[tuple[str, ...]]
    words: ClassVar[str]
    needs_pair: ClassVar[bool] = False
    closed_labels: ClassVar[bool] = False
    labelled_demos: ClassVar[bool] = True
    offline_model: ClassVar[str] = "local-auto"

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The slots a template of this task must contain."""
        return ("{text}", "{text_pair}") if self.needs_pair else ("{text}",)

    def check(self, config: TaskConfig) -> None:
        """Raise ``ValueError`` when ``config`` is incomplete for this task (beyond the generic checks)."""
        if self.closed_labels and config.labels is None:
            raise ValueError(f"{self.name} needs labels, e.g. labels=['正面', '负面', '中性']")
        if not all(slot in config.template for slot in self.placeholders):
            raise ValueError(f"a {self.name} prompt_template must contain {' and '.join(self.placeholders)}")

    def check_pair_column(self, text_pair_column: str | None) -> None:
        """Raise ``ValueError`` when the task reads a second text and no column for it is given."""
        if self.needs_pair and not text_pair_column:
            raise ValueError(f"{self.name} needs text_pair_column (the second sentence)")

    @abstractmethod
    def format_rules(self, config: TaskConfig) -> str:
        """The system message's answer format for a generative model."""

    @abstractmethod
    def answer(self, config: TaskConfig, example: Example) -> str:
        """The assistant turn of a few-shot demonstration: ``example``'s gold answer in the answer format."""

    @abstractmethod
    def parse(self, raw: str, source: str, config: TaskConfig) -> tuple[Value, float | None]:
        """One generative answer -> (prediction, score); :class:`~openautoglm.core.nlp.parse.ParseError` when it
        breaks the format."""

    @abstractmethod
    def metrics(
        self, config: TaskConfig, texts: Sequence[str], gold: Sequence[Any], results: Sequence[RowResult]
    ) -> dict[str, Any]:
        """Metrics of ``results`` (in the order of ``gold``) against the gold values."""

    @abstractmethod
    def primary(self, metrics: dict[str, Any]) -> float:
        """The number an optimiser maximises, from :meth:`metrics`' output."""

    @abstractmethod
    def correct(self, config: TaskConfig, example: Example, result: RowResult) -> bool:
        """Whether ``result`` answers ``example`` right (for the mistakes shown to a prompt proposer)."""


#: Task types by name.
TASK_TYPES: Registry[TaskKind] = Registry("task type", base=TaskKind)


def task_kind(name: str) -> TaskKind:
    """The task type registered as ``name`` (a ``ResolveError`` listing the choices otherwise)."""
    return TASK_TYPES.resolve(name)


def task_type_names() -> list[str]:
    """Registered task type names in registration order."""
    return [name for name, _ in TASK_TYPES.items()]
