"""Values shared by the NLP tasks: the task configuration, inputs, entities and per-row results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from openautoglm.core.registry import RegisteredName, Registry

if TYPE_CHECKING:
    from openautoglm.core.nlp.task_types import TaskKind


def _task_types() -> Registry[Any]:
    from openautoglm.core.nlp.task_types import TASK_TYPES

    return TASK_TYPES


#: A registered task type's name (:data:`openautoglm.core.nlp.task_types.TASK_TYPES`): ``text_classification``,
#: ``ner``, ``semantic_matching``, or one a plug-in registers.
TaskType = Annotated[str, RegisteredName(_task_types)]
Status = Literal["ok", "unparsed", "error"]
#: The slots a model fills in a prompt template; each may occur once.
TEMPLATE_SLOTS = ("{text}", "{text_pair}")


class Example(BaseModel):
    """A labelled example (few-shot demonstration, or a training row for prototypes)."""

    model_config = ConfigDict(frozen=True)

    text: str
    label: str
    text_pair: str | None = None


def examples_from(items: Iterable[Any] | None) -> tuple[Example, ...]:
    """Examples from Examples, mappings (``{"text", "label", "text_pair"?}``) or ``(text, label[, text_pair])``
    tuples."""
    out = []
    for item in items or ():
        if isinstance(item, Example):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(Example(**item))
        else:
            text, label, *rest = item
            out.append(Example(text=text, label=label, text_pair=rest[0] if rest else None))
    return tuple(out)


class TaskConfig(BaseModel):
    """What to do with each row. Hashable and secret-free: it is part of cache keys and flow parameters.

    Attributes:
        task_type: ``text_classification``, ``ner`` or ``semantic_matching``.
        labels: Label set (classification) or ``(no-match, match)`` labels (matching).
        prompt_template: Instruction with ``{text}`` (and ``{text_pair}``), each exactly once (a template that
            repeats a slot would multiply what the model reads); the default per task when empty.
        verbalizers: Per label, the text an embedding model compares against (zero-shot); default: the label.
        few_shot: Demonstrations (generative models) or prototype examples (embedding models).
        entity_types: Entity types to extract (NER).
        threshold: Similarity at or above which a pair matches (matching), on [0, 1].
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_type: TaskType = Field(default="text_classification", description="The task.")
    labels: tuple[str, ...] | None = Field(default=None, description="Label set, e.g. 正面,负面,中性.")
    prompt_template: str | None = Field(
        default=None, description="Instruction with {text} (and {text_pair}); default per task."
    )
    verbalizers: tuple[tuple[str, str], ...] | None = Field(
        default=None, description="Per label, the text an embedding model compares against (default: the label)."
    )
    few_shot: tuple[Example, ...] = Field(default=(), description="Demonstrations or prototype examples.")
    entity_types: tuple[str, ...] = Field(default=("PER", "LOC", "ORG"), description="NER entity types.")
    threshold: float = Field(default=0.5, ge=0.0, le=1.0, description="Matching: similarity at which a pair matches.")

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if labels is not None:
            if len(labels) < 2:
                raise ValueError("give at least two labels")
            if len(set(labels)) != len(labels):
                raise ValueError(f"labels repeat a value: {list(labels)}")
        return labels

    @model_validator(mode="after")
    def _complete(self) -> TaskConfig:
        if "{text}" not in self.template:
            raise ValueError("prompt_template must contain {text}")
        for slot in TEMPLATE_SLOTS:
            count = self.template.count(slot)
            if count > 1:
                raise ValueError(
                    f"prompt_template holds {slot} {count} times; write it once (each copy is filled with the whole "
                    "text, so the model would read it again and again)"
                )
        self.kind.check(self)
        if self.verbalizers is not None and self.labels is not None:
            unknown = sorted({label for label, _ in self.verbalizers} - set(self.labels))
            if unknown:
                raise ValueError(f"verbalizers name labels {unknown} that are not in labels {list(self.labels)}")
        if self.labels is not None:
            unknown = sorted({e.label for e in self.few_shot} - set(self.labels))
            if unknown and self.kind.labelled_demos:
                raise ValueError(f"few_shot examples use labels {unknown} that are not in labels")
        return self

    @property
    def template(self) -> str:
        """The prompt template in use (the task's default when none was given)."""
        return self.prompt_template or self.kind.default_template

    @property
    def kind(self) -> TaskKind:
        """The task type object (prompts, parsing, metrics of this task)."""
        from openautoglm.core.nlp.task_types import task_kind

        return task_kind(self.task_type)

    @property
    def match_labels(self) -> tuple[str, str]:
        """(no-match, match) labels for semantic matching."""
        if self.labels is None:
            return ("0", "1")
        return (self.labels[0], self.labels[1])

    def verbalizer(self, label: str) -> str:
        """The text standing for ``label`` (for embedding models)."""
        return dict(self.verbalizers or ()).get(label, label)


@dataclass(frozen=True)
class Row:
    """One input row: its id, text and (matching) second text."""

    row_id: int
    text: str
    text_pair: str | None = None


@dataclass(frozen=True)
class Entity:
    """An entity span: ``text == source[start:end]``."""

    text: str
    type: str
    start: int
    end: int

    def as_dict(self) -> dict[str, object]:
        return {"text": self.text, "type": self.type, "start": self.start, "end": self.end}


Value = str | float | tuple[Entity, ...] | None


@dataclass(frozen=True)
class RowResult:
    """What a backend made of one row.

    Attributes:
        row_id: The row.
        prediction: Label (classification, matching) or entities (NER); ``None`` unless ``status == "ok"``.
        score: Confidence of the label (classification), similarity (matching), or ``None``.
        raw: The model's raw output (for generative models, the last answer).
        status: ``ok``; ``unparsed`` (the output broke the format twice); ``error`` (the call failed).
        reason: Why it is not ``ok``.
        latency_ms: Time spent on this row's model calls (0 when served from the cache).
        calls: Model calls made for this row (0 when cached).
        tokens: Tokens billed (prompt + completion) when the backend reports them.
    """

    row_id: int
    prediction: Value
    score: float | None = None
    raw: str = ""
    status: Status = "ok"
    reason: str = ""
    latency_ms: float = 0.0
    calls: int = 0
    tokens: int = 0
    extra: dict[str, object] = field(default_factory=dict)
