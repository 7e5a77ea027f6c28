"""What an annotation project asks, which answers fit it, and which answer of an item wins.

Pure logic the annotation store (:mod:`openautoglm.adapters.annotation_store`) calls: the project's specification,
the content and snapshot digests, the evaluation slice's membership, the checks an answer must pass, and the winner
among an item's answers:

- an answer recorded as adjudicated (a reviewer's or an admin's) wins over any number of others (the latest such
  answer when there are several);
- otherwise the majority of the annotators' latest answers, a tie going to the answer given last.

An item's answers *agree* when two or more annotators answered and every non-adjudicated answer is the same; the
evaluation slice's gold answer is the adjudicated one, else the agreed one (:func:`resolve`).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.types import Entity

#: Task types a project may have: a label per item, or entity spans.
AnnotationTask = Literal["text_classification", "ner"]
#: Project names: they appear in URLs and file names.
NAME_PATTERN = r"^[\w][\w.-]{0,62}$"
#: The resolution of the evaluation slice's hash: shares are kept to 1 part in 2**32.
_HASH_SPACE = 2**32


class InvalidAnswer(ConfigurationError):
    """An answer (a person's or a model's) that the project does not allow: a label outside its labels, an entity
    type outside its entity types, a span that is not the text at its offsets."""


class ProjectSpec(BaseModel):
    """What a project asks of its annotators.

    Attributes:
        name: Letters, digits, ``_``, ``.``, ``-``; 63 characters at most.
        task_type: ``text_classification`` (one label per item) or ``ner`` (entity spans).
        labels: The labels (classification; two or more, distinct).
        entity_types: The entity types (NER; one or more, distinct).
        guidelines: What the annotators read first (Markdown).
        eval_share: The share of items put in the evaluation slice when they are added (chosen by a seeded hash of
            their content digest, so the same rows land there on every machine): each is answered by
            ``eval_annotators`` different people, the sampler never chooses it, and models are scored on it.
        eval_seed: Seeds that hash (another seed, another slice).
        eval_annotators: How many different people answer each evaluation item.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    task_type: AnnotationTask = "text_classification"
    labels: tuple[str, ...] = ()
    entity_types: tuple[str, ...] = ()
    guidelines: str = Field(default="", max_length=100_000)
    eval_share: float = Field(default=0.1, ge=0.0, le=0.9)
    eval_seed: int = Field(default=0, ge=0, le=2**31 - 1)
    eval_annotators: int = Field(default=2, ge=2, le=10)

    @field_validator("labels", "entity_types")
    @classmethod
    def _distinct(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if any(not v.strip() or len(v) > 200 for v in values):
            raise ValueError("labels and entity types are non-blank strings of at most 200 characters")
        if len(set(values)) != len(values):
            raise ValueError(f"a value repeats: {list(values)}")
        return values

    @model_validator(mode="after")
    def _answers(self) -> ProjectSpec:
        if self.task_type == "text_classification":
            if len(self.labels) < 2 or self.entity_types:
                raise ValueError("a text_classification project needs two or more labels and no entity_types")
        elif not self.entity_types or self.labels:
            raise ValueError("a ner project needs one or more entity_types and no labels")
        return self

    @property
    def choices(self) -> tuple[str, ...]:
        """The labels (classification) or entity types (NER)."""
        return self.labels if self.task_type == "text_classification" else self.entity_types


# --- digests --------------------------------------------------------------------------------------------------


def item_digest(text: str) -> str:
    """An item's content digest: SHA-256 of the text's UTF-8 bytes, as hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_entities(entities: Iterable[Entity]) -> str:
    """Entities as canonical JSON: sorted by offsets then type, keys sorted, no spaces."""
    ordered = sorted(entities, key=lambda e: (e.start, e.end, e.type, e.text))
    return json.dumps([e.as_dict() for e in ordered], ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def answer_key(label: str | None, entities: Iterable[Entity] | None) -> str:
    """An answer as one string: the label, or the entities as canonical JSON (equal answers, equal keys)."""
    return label if label is not None else canonical_entities(entities or ())


def snapshot_digest(pairs: Iterable[tuple[str, str]]) -> str:
    """SHA-256 over sorted ``(item digest, answer)`` pairs, one ``digest\\tanswer\\n`` line each."""
    lines = "".join(f"{digest}\t{answer}\n" for digest, answer in sorted(pairs))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def in_eval_slice(digest: str, share: float, seed: int = 0) -> bool:
    """Whether an item of content digest ``digest`` belongs to the evaluation slice: SHA-256 of ``seed:digest``
    read as a number in [0, 1) is below ``share``. Deterministic, independent of the order items arrive in, and
    about ``share`` of any large set of items."""
    if share <= 0.0:
        return False
    point = int.from_bytes(hashlib.sha256(f"{seed}:{digest}".encode()).digest()[:4], "big") / _HASH_SPACE
    return point < share


# --- checks ---------------------------------------------------------------------------------------------------


def check_answer(
    project: ProjectSpec, text: str, label: str | None, entities: Sequence[Entity] | None, *, who: str
) -> None:
    """Raise :class:`InvalidAnswer` unless the answer fits the project: a label among its labels
    (classification), or entities whose types are its entity types and whose spans are the text at their offsets."""
    if project.task_type == "text_classification":
        if label is None or entities is not None:
            raise InvalidAnswer(
                f"{who} in '{project.name}' must be one label of {list(project.labels)}.", hint="answer with a label"
            )
        if label not in project.labels:
            raise InvalidAnswer(
                f"{who}: '{label}' is not a label of '{project.name}' ({list(project.labels)}).",
                hint="use one of the project's labels",
            )
        return
    if entities is None or label is not None:
        raise InvalidAnswer(
            f"{who} in '{project.name}' must be a list of entities ({{text, type, start, end}}; empty for none).",
            hint=f"entity types: {list(project.entity_types)}",
        )
    seen: set[tuple[int, int, str]] = set()
    for e in entities:
        if e.type not in project.entity_types:
            raise InvalidAnswer(
                f"{who}: '{e.type}' is not an entity type of '{project.name}' ({list(project.entity_types)}).",
                hint="use one of the project's entity types",
            )
        if not 0 <= e.start < e.end <= len(text) or text[e.start : e.end] != e.text:
            raise InvalidAnswer(
                f"{who}: the span {e.start}-{e.end} of the item's text is {text[e.start : e.end]!r}, not {e.text!r}."
                if 0 <= e.start < e.end <= len(text)
                else f"{who}: the span {e.start}-{e.end} is outside the item's text ({len(text)} characters).",
                hint="offsets count characters from 0, end exclusive: text[start:end] == entity text",
            )
        if (e.start, e.end, e.type) in seen:
            raise InvalidAnswer(f"{who}: the entity {e.text!r} ({e.type}, {e.start}-{e.end}) is given twice.")
        seen.add((e.start, e.end, e.type))


# --- which answer wins ----------------------------------------------------------------------------------------


class Vote(Protocol):
    """What :func:`majority` and :func:`resolve` read of an answer (the store's ``Annotation`` is one)."""

    @property
    def id(self) -> int: ...
    @property
    def annotator(self) -> str: ...
    @property
    def label(self) -> str | None: ...
    @property
    def entities(self) -> tuple[Entity, ...] | None: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def adjudicated(self) -> bool: ...


V = TypeVar("V", bound=Vote)


def _latest(votes: Iterable[V]) -> V:
    return max(votes, key=lambda a: (a.updated_at, a.id))


def majority(annotations: Sequence[V]) -> tuple[V, int]:
    """The answer most annotators gave an item, and its vote count; a tie goes to the answer labelled last.

    With one annotator that is their (latest) answer. Adjudication is not looked at here (see :func:`resolve`).

    Raises:
        ConfigurationError: no annotations.
    """
    if not annotations:
        raise ConfigurationError("majority of no annotations")
    groups: dict[str, list[V]] = defaultdict(list)
    for annotation in annotations:
        groups[answer_key(annotation.label, annotation.entities)].append(annotation)
    votes = {key: len(group) for key, group in groups.items()}
    best = max(groups, key=lambda key: (votes[key], max((a.updated_at, a.id) for a in groups[key])))
    return _latest(groups[best]), votes[best]


@dataclass(frozen=True)
class Resolution:
    """Which answer of an item wins, and how.

    Attributes:
        winner: The winning answer (an adjudicated one when any).
        votes: How many annotators gave the winning answer.
        adjudicated: The winner was recorded as adjudicated.
        agreed: Two or more annotators answered without adjudication and all gave the same answer.
        disputed: Two or more different non-adjudicated answers and no adjudication: a reviewer's job.
    """

    winner: Vote
    votes: int
    adjudicated: bool
    agreed: bool
    disputed: bool

    @property
    def gold(self) -> bool:
        """The answer can score a model on the evaluation slice: adjudicated, or agreed."""
        return self.adjudicated or self.agreed


def resolve(annotations: Sequence[Vote]) -> Resolution:
    """The winning answer of one item's annotations: the latest adjudicated one, else the majority.

    Raises:
        ConfigurationError: no annotations.
    """
    winner, votes = majority(annotations)
    plain = [a for a in annotations if not a.adjudicated]
    keys = {answer_key(a.label, a.entities) for a in plain}
    adjudications = [a for a in annotations if a.adjudicated]
    if adjudications:
        winner = _latest(adjudications)
        key = answer_key(winner.label, winner.entities)
        votes = sum(answer_key(a.label, a.entities) == key for a in annotations)
    return Resolution(
        winner=winner,
        votes=votes,
        adjudicated=bool(adjudications),
        agreed=len(plain) >= 2 and len(keys) == 1,
        disputed=len(keys) >= 2 and not adjudications,
    )
