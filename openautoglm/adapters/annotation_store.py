"""The annotation store: projects, the items to label, model predictions and people's answers, in a SQL database.

SQLite (``$OPENAUTOGLM_HOME/annotations.db``) by default; PostgreSQL in production (``postgresql+psycopg://...``,
the ``OPENAUTOGLM_ANNOTATIONS_URL`` setting). Four tables:

- **projects**: a name, the task type (``text_classification`` or ``ner``), its labels or entity types, guidelines;
- **items**: a text with where it came from (``source``, ``row_id``) and its content digest (SHA-256 of the text's
  UTF-8 bytes); one item per (project, digest), so adding the same rows again adds nothing;
- **predictions**: a model's answer for an item in a round (model, version, label or entities, scores, margin);
  one per (item, round, model, version), the last one written wins;
- **annotations**: a person's answer (who: the API token's subject), seconds spent, when; one per (item,
  annotator): a re-label replaces the answer, keeps ``created_at``, moves ``updated_at`` and adds the seconds.

Writes are single upserts (``INSERT ... ON CONFLICT``), so writers in several processes never overwrite each other's
rows; on SQLite each connection uses WAL and a busy timeout, and a write that still finds the database locked (or a
PostgreSQL deadlock) is retried with a bounded, jittered backoff. The label snapshot (:meth:`AnnotationStore.
label_snapshot`) is one answer per labelled item with a digest of (item digest, answer) pairs; it is what the CSV,
JSONL and MLflow exports write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import sqlite3
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from openautoglm.core.annotation.agreement import Agreement, entity_agreement, label_agreement
from openautoglm.core.annotation.answers import (
    NAME_PATTERN,
    AnnotationTask,
    InvalidAnswer,
    ProjectSpec,
    answer_key,
    canonical_entities,
    check_answer,
    in_eval_slice,
    item_digest,
    majority,
    resolve,
    snapshot_digest,
)
from openautoglm.core.errors import ConfigurationError, OpenAutoGLMError
from openautoglm.core.nlp.types import Entity

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.data.pandas_dataset import PandasDataset

log = logging.getLogger(__name__)

# The project's specification, digests and answer checks live in core (pure); they stay importable from here.
__all__ = [
    "NAME_PATTERN",
    "Agreement",
    "AnnotationStore",
    "AnnotationTask",
    "InvalidAnswer",
    "ProjectSpec",
    "canonical_entities",
    "item_digest",
    "majority",
    "snapshot_digest",
]

T = TypeVar("T")
R = TypeVar("R", bound=BaseModel)

ExportFormat = Literal["csv", "jsonl"]
#: Tries of a write that finds the database locked (SQLite) or deadlocked (PostgreSQL), with a growing pause.
WRITE_ATTEMPTS = 12
#: How long an item :meth:`AnnotationStore.next_items` serves stays out of other annotators' queues.
LEASE_S = 120.0
#: Queries for free items a caller makes when racing callers lease the ones it found first.
LEASE_TRIES = 8
#: Rows per statement (SQLite allows 32,766 bound values; PostgreSQL 65,535).
CHUNK = 500
#: MLflow's ``datasets.digest`` column holds 36 characters: the snapshot digest is cut to that there (the whole
#: digest is the input's ``label_digest`` tag).
MLFLOW_DIGEST_CHARS = 36
_TRANSIENT = ("database is locked", "database table is locked", "deadlock detected", "could not serialize")


# --- errors ---------------------------------------------------------------------------------------------------


class ProjectNotFound(ConfigurationError):
    """No annotation project of that name."""


class ProjectExists(ConfigurationError):
    """An annotation project of that name exists already."""


class ItemNotFound(ConfigurationError):
    """No such item in the project."""


class AnnotationNotFound(ItemNotFound):
    """No answer of that annotator to that item."""


class StoreBusy(OpenAutoGLMError):
    """The database stayed locked through every retry of a write."""


class StoreUnavailable(OpenAutoGLMError):
    """The database cannot be reached or its tables cannot be made."""


# --- values crossing the store's boundary -------------------------------------------------------------------


class Project(ProjectSpec):
    """A stored project."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int
    created_at: datetime


class NewItem(BaseModel):
    """A row to label: its text and where it came from (``source``: a file or table; ``row_id``: its key there)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1, max_length=1_000_000)
    source: str = Field(default="", max_length=500)
    row_id: str = Field(default="", max_length=200)

    @field_validator("row_id", mode="before")
    @classmethod
    def _as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value

    @property
    def digest(self) -> str:
        return item_digest(self.text)


class Item(BaseModel):
    """A stored item (``eval``: in the evaluation slice, answered by several people and never queued)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int
    text: str
    source: str
    row_id: str
    digest: str
    eval: bool = False
    created_at: datetime


class AddedItems(BaseModel):
    """What :meth:`AnnotationStore.add_items` did: items added, items already held (or repeated in the input), and
    each input item's id, in the input's order."""

    model_config = ConfigDict(frozen=True)

    added: int
    duplicates: int
    ids: tuple[int, ...]


class NewPrediction(BaseModel):
    """A model's answer for an item: a label with its scores (classification), or entities (NER).

    ``margin`` (top score minus the runner-up) is computed from ``scores`` when not given.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    item_id: int
    label: str | None = None
    entities: tuple[Entity, ...] | None = None
    scores: dict[str, float] = Field(default_factory=dict)
    margin: float | None = None

    @field_validator("scores")
    @classmethod
    def _finite(cls, scores: dict[str, float]) -> dict[str, float]:
        if not all(math.isfinite(v) for v in scores.values()):
            raise ValueError("scores must be finite numbers")
        return scores

    @property
    def top_margin(self) -> float | None:
        if self.margin is not None:
            return self.margin
        ranked = sorted(self.scores.values(), reverse=True)
        return ranked[0] - ranked[1] if len(ranked) >= 2 else None


class Prediction(BaseModel):
    """A stored prediction."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int
    item_id: int
    round: int
    model: str
    model_version: str
    label: str | None
    entities: tuple[Entity, ...] | None
    scores: dict[str, float]
    margin: float | None
    created_at: datetime


class NewAnnotation(BaseModel):
    """A person's answer: a label (classification) or the item's entities (NER; an empty list = none).

    Attributes:
        annotator: Who answered: the API token's subject.
        seconds: Time spent on the item.
        adjudicated: A reviewer's (or an admin's) answer settling the item: it wins over every other answer in the
            label snapshot. Whoever calls the store checks that the annotator may adjudicate.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    item_id: int
    annotator: str = Field(min_length=1, max_length=200)
    answer: str | tuple[Entity, ...]
    seconds: float = Field(default=0.0, ge=0.0, le=86_400.0)
    adjudicated: bool = False


class Annotation(BaseModel):
    """A stored annotation (``seconds``: the time spent over every label of this item by this annotator)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int
    item_id: int
    annotator: str
    label: str | None
    entities: tuple[Entity, ...] | None
    seconds: float
    adjudicated: bool = False
    created_at: datetime
    updated_at: datetime

    @property
    def answer(self) -> str | tuple[Entity, ...]:
        return self.label if self.label is not None else (self.entities or ())


class ProjectStatus(BaseModel):
    """How far a project is: items, items with at least one annotation, annotations, distinct annotators, items in
    the evaluation slice, items ever queued, and the latest annotation round (``None`` before the first)."""

    model_config = ConfigDict(frozen=True)

    project: str
    items: int
    labelled_items: int
    annotations: int
    annotators: int
    eval_items: int = 0
    queued: int = 0
    round: int | None = None


class QueuedItem(BaseModel):
    """An item queued for labelling by a round: the sampler's strategy and score (higher: labelled first)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    item_id: int
    round: int
    strategy: str
    score: float
    position: int = 0
    created_at: datetime


class Round(BaseModel):
    """An annotation round: the model that pre-labelled the pool (name and version), the labels held when it
    started (training labels: outside the evaluation slice) with their snapshot digest, and how many rows it
    queued."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    round: int = Field(ge=0)
    model: str = Field(min_length=1, max_length=200)
    model_version: str = Field(default="", max_length=200)
    label_count: int = Field(default=0, ge=0)
    label_digest: str = Field(default="", max_length=64)
    queued: int = Field(default=0, ge=0)
    created_at: datetime | None = None


class Training(BaseModel):
    """A model trained on a label snapshot: the round it belongs to, the labels it learnt from (count and digest),
    the registered model and version, its score on the evaluation slice (``None`` when the slice has no gold
    answer yet) and the aliases it was given."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    round: int = Field(ge=0)
    label_count: int = Field(ge=0)
    label_digest: str = Field(max_length=64)
    model_name: str = Field(min_length=1, max_length=200)
    model_version: str = Field(default="", max_length=200)
    score: float | None = None
    eval_items: int = 0
    aliases: tuple[str, ...] = ()
    created_at: datetime | None = None


class Disagreement(BaseModel):
    """An item whose annotators gave different answers and that no reviewer has adjudicated yet."""

    model_config = ConfigDict(frozen=True)

    item: Item
    annotations: tuple[Annotation, ...]


class SnapshotRow(BaseModel):
    """One labelled item in a label snapshot: its answer and how many of its annotators gave it."""

    model_config = ConfigDict(frozen=True)

    item_id: int
    source: str
    row_id: str
    text: str
    label: str | None
    entities: tuple[Entity, ...] | None
    votes: int
    annotators: int
    digest: str
    eval: bool = False
    adjudicated: bool = False
    agreed: bool = False

    @property
    def gold(self) -> bool:
        """An evaluation-slice answer models may be scored against: adjudicated, or agreed by two or more."""
        return self.eval and (self.adjudicated or self.agreed)


class LabelSnapshot(BaseModel):
    """The labels of a project at one moment, one per labelled item (rows in item id order).

    ``digest``: SHA-256 over the sorted ``(item digest, answer)`` pairs (the answer: the label, or the entities as
    canonical JSON); it changes when and only when an item's answer changes or an item gains its first answer.
    """

    model_config = ConfigDict(frozen=True)

    project: str
    task_type: AnnotationTask
    digest: str
    rows: tuple[SnapshotRow, ...]

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (entities as JSON text): what the CSV export and the MLflow dataset hold."""
        import pandas as pd

        answer = "label" if self.task_type == "text_classification" else "entities"
        columns = [
            "item_id",
            "source",
            "row_id",
            "text",
            answer,
            "votes",
            "annotators",
            "digest",
            "eval",
            "adjudicated",
            "agreed",
        ]
        records = [
            {
                **row.model_dump(include=set(columns)),
                "entities": None if row.entities is None else canonical_entities(row.entities),
            }
            for row in self.rows
        ]
        return pd.DataFrame.from_records(records, columns=columns)


# --- pure helpers ---------------------------------------------------------------------------------------------


def _entities_json(entities: Iterable[Entity] | None) -> list[dict[str, object]] | None:
    if entities is None:
        return None
    return json.loads(canonical_entities(entities))  # type: ignore[no-any-return]


def _chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _rows(conn: sa.Connection, query: sa.Select[Any], item_ids: Iterable[int] | None) -> list[sa.Row[Any]]:
    """The rows of ``query`` (which selects from items); only those of ``item_ids`` when given (asked in chunks,
    within the databases' limits on bound values)."""
    if item_ids is None:
        return list(conn.execute(query).all())
    chunks = _chunks(sorted(set(item_ids)))
    return [row for chunk in chunks for row in conn.execute(query.where(ItemRow.id.in_(chunk))).all()]


# --- tables ---------------------------------------------------------------------------------------------------


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware timestamp; SQLite drops the zone, and every value written here is UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


_JSON = sa.JSON(none_as_null=True)


class Base(DeclarativeBase):
    """The annotation store's tables (a metadata of their own)."""


class ProjectRow(Base):
    __tablename__ = "openautoglm_annotation_projects"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(63), unique=True)
    task_type: Mapped[str] = mapped_column(sa.String(63))
    labels: Mapped[list[str]] = mapped_column(_JSON)
    entity_types: Mapped[list[str]] = mapped_column(_JSON)
    guidelines: Mapped[str] = mapped_column(sa.Text)
    eval_share: Mapped[float] = mapped_column(sa.Float, default=0.1)
    eval_seed: Mapped[int] = mapped_column(sa.Integer, default=0)
    eval_annotators: Mapped[int] = mapped_column(sa.Integer, default=2)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The label count at which a training was last said to be due (:meth:`AnnotationStore.mark_due`).
    due_mark: Mapped[int] = mapped_column(sa.Integer, default=0)


class ItemRow(Base):
    __tablename__ = "openautoglm_annotation_items"
    __table_args__ = (sa.UniqueConstraint("project_id", "digest", name="openautoglm_annotation_item_digest"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey(ProjectRow.id, ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.String(500))
    row_id: Mapped[str] = mapped_column(sa.String(200))
    digest: Mapped[str] = mapped_column(sa.String(64))
    eval: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PredictionRow(Base):
    __tablename__ = "openautoglm_annotation_predictions"
    __table_args__ = (
        sa.UniqueConstraint("item_id", "round", "model", "model_version", name="openautoglm_annotation_prediction"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey(ItemRow.id, ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(sa.Integer)
    model: Mapped[str] = mapped_column(sa.String(200))
    model_version: Mapped[str] = mapped_column(sa.String(200))
    label: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    entities: Mapped[list[dict[str, Any]] | None] = mapped_column(_JSON, nullable=True)
    scores: Mapped[dict[str, float]] = mapped_column(_JSON)
    margin: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AnnotationRow(Base):
    __tablename__ = "openautoglm_annotations"
    __table_args__ = (sa.UniqueConstraint("item_id", "annotator", name="openautoglm_annotation_item_annotator"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey(ItemRow.id, ondelete="CASCADE"))
    annotator: Mapped[str] = mapped_column(sa.String(200), index=True)
    label: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    entities: Mapped[list[dict[str, Any]] | None] = mapped_column(_JSON, nullable=True)
    seconds: Mapped[float] = mapped_column(sa.Float)
    adjudicated: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class QueueRow(Base):
    """An item queued for labelling: once, by the first round that chose it."""

    __tablename__ = "openautoglm_annotation_queue"

    item_id: Mapped[int] = mapped_column(sa.ForeignKey(ItemRow.id, ondelete="CASCADE"), primary_key=True)
    round: Mapped[int] = mapped_column(sa.Integer)
    strategy: Mapped[str] = mapped_column(sa.String(63))
    score: Mapped[float] = mapped_column(sa.Float)
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Who :meth:`AnnotationStore.next_items` served the item to last, and until when (Unix seconds) nobody else is
    #: served it: a lease, so two annotators asking at once get different items.
    leased_to: Mapped[str] = mapped_column(sa.String(200), default="")
    leased_until: Mapped[float] = mapped_column(sa.Float, default=0.0)


class RoundRow(Base):
    __tablename__ = "openautoglm_annotation_rounds"

    project_id: Mapped[int] = mapped_column(sa.ForeignKey(ProjectRow.id, ondelete="CASCADE"), primary_key=True)
    round: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    model: Mapped[str] = mapped_column(sa.String(200))
    model_version: Mapped[str] = mapped_column(sa.String(200))
    label_count: Mapped[int] = mapped_column(sa.Integer)
    label_digest: Mapped[str] = mapped_column(sa.String(64))
    queued: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TrainingRow(Base):
    """A model trained on a label snapshot; one per (project, registered model name, version)."""

    __tablename__ = "openautoglm_annotation_trainings"
    __table_args__ = (
        sa.UniqueConstraint("project_id", "model_name", "model_version", name="openautoglm_annotation_training"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey(ProjectRow.id, ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(sa.Integer)
    label_count: Mapped[int] = mapped_column(sa.Integer)
    label_digest: Mapped[str] = mapped_column(sa.String(64))
    model_name: Mapped[str] = mapped_column(sa.String(200))
    model_version: Mapped[str] = mapped_column(sa.String(200))
    score: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    eval_items: Mapped[int] = mapped_column(sa.Integer)
    aliases: Mapped[list[str]] = mapped_column(_JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


def _table(model: type[Base]) -> sa.Table:
    return Base.metadata.tables[str(model.__tablename__)]


# --- the store ------------------------------------------------------------------------------------------------


class AnnotationStore:
    """Annotation projects, items, predictions and annotations in one SQLAlchemy database.

    Args:
        url: A SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://user@host/db``); default: the
            ``annotations_url`` setting (``sqlite:///$OPENAUTOGLM_HOME/annotations.db`` when unset).
        busy_timeout_s: SQLite: how long a write waits for another writer's lock before it is retried.

    Raises:
        ConfigurationError: a database other than SQLite or PostgreSQL.
    """

    def __init__(self, url: str | None = None, *, busy_timeout_s: float = 30.0) -> None:
        if url is None:
            from openautoglm.settings import get_settings

            url = get_settings().annotations_store_url
        parsed = sa.engine.make_url(url)
        self.backend = parsed.get_backend_name()
        if self.backend not in ("sqlite", "postgresql"):
            raise ConfigurationError(
                f"The annotation store runs on SQLite or PostgreSQL, not {self.backend!r}.",
                hint="set OPENAUTOGLM_ANNOTATIONS_URL to sqlite:///path/annotations.db or postgresql+psycopg://...",
            )
        self.url = url
        if self.backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        if self.backend == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas(busy_timeout_s))
        self._insert = sqlite.insert if self.backend == "sqlite" else postgresql.insert
        self._ready = False
        self._lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    @property
    def safe_url(self) -> str:
        """The URL without its password (for logs and MLflow)."""
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    # --- set-up and retries ---------------------------------------------------------------------------------
    def _ensure(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            for attempt in range(WRITE_ATTEMPTS):
                try:
                    Base.metadata.create_all(self.engine)
                    _add_missing_columns(self.engine)
                    break
                except (OperationalError, ProgrammingError, IntegrityError) as error:
                    # another process created a table between check and create, or held the SQLite lock; anything
                    # else (no server, a wrong password) will not pass by waiting
                    racing = not isinstance(error, OperationalError) or _transient(error)
                    if not racing or attempt == WRITE_ATTEMPTS - 1:
                        raise StoreUnavailable(
                            f"Cannot open the annotation store at {self.safe_url}: {str(error.orig).splitlines()[0]}",
                            hint="check OPENAUTOGLM_ANNOTATIONS_URL and that the database server is running",
                        ) from error
                    time.sleep(_pause(attempt))
            self._ready = True

    def _write(self, what: str, body: Callable[[sa.Connection], T]) -> T:
        """Run ``body`` in a transaction, again (after a jittered pause) when the database is locked."""
        self._ensure()
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    return body(conn)
            except OperationalError as error:
                if not _transient(error):
                    raise
                log.debug("%s: %s (try %d of %d)", what, str(error).splitlines()[0], attempt + 1, WRITE_ATTEMPTS)
                if attempt < WRITE_ATTEMPTS - 1:
                    time.sleep(_pause(attempt))
        raise StoreBusy(
            f"The annotation store stayed locked through {WRITE_ATTEMPTS} tries to {what}.",
            hint="try again; with many annotators at once, use PostgreSQL (OPENAUTOGLM_ANNOTATIONS_URL)",
        )

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        self._ensure()
        with self.engine.connect() as conn:
            yield conn

    # --- projects -------------------------------------------------------------------------------------------
    def create_project(self, spec: ProjectSpec) -> Project:
        """Store a new project.

        Raises:
            ProjectExists: a project of that name exists.
        """
        values = {
            "name": spec.name,
            "task_type": spec.task_type,
            "labels": list(spec.labels),
            "entity_types": list(spec.entity_types),
            "guidelines": spec.guidelines,
            "eval_share": spec.eval_share,
            "eval_seed": spec.eval_seed,
            "eval_annotators": spec.eval_annotators,
            "created_at": datetime.now(UTC),
        }

        def insert(conn: sa.Connection) -> int:
            return int(conn.execute(sa.insert(ProjectRow).values(values).returning(ProjectRow.id)).scalar_one())

        try:
            project_id = self._write(f"create project '{spec.name}'", insert)
        except IntegrityError as error:
            raise ProjectExists(
                f"An annotation project named '{spec.name}' exists already.",
                hint="choose another name, or add items to the existing project",
            ) from error
        return Project.model_validate({**values, "id": project_id})

    def get_project(self, name: str) -> Project:
        """The project called ``name``.

        Raises:
            ProjectNotFound: no such project.
        """
        with self._read() as conn:
            return self._project(conn, name)

    def list_projects(self) -> list[Project]:
        """Every project, by name."""
        with self._read() as conn:
            rows = conn.execute(sa.select(ProjectRow).order_by(ProjectRow.name)).all()
        return [Project.model_validate(dict(row._mapping)) for row in rows]

    def _project(self, conn: sa.Connection, name: str) -> Project:
        row = conn.execute(sa.select(ProjectRow).where(ProjectRow.name == name)).first()
        if row is None:
            raise ProjectNotFound(
                f"No annotation project named '{name}'.", hint="list the projects, or create this one first"
            )
        return Project.model_validate(dict(row._mapping))

    # --- items ----------------------------------------------------------------------------------------------
    def add_items(self, project: str, items: Iterable[NewItem]) -> AddedItems:
        """Add rows to label; an item whose text the project holds already (same digest) is not added again.

        About ``eval_share`` of the items go into the evaluation slice, by a seeded hash of their digest
        (:func:`~openautoglm.core.annotation.answers.in_eval_slice`): the same text always lands on the same side.

        Returns:
            Items added, duplicates (held already, or repeated in ``items``), and each input's item id in order.
        """
        items = list(items)
        digests = [item.digest for item in items]
        unique: dict[str, NewItem] = {}
        for digest, item in zip(digests, items, strict=True):
            unique.setdefault(digest, item)
        with self._read() as conn:
            spec = self._project(conn, project)
        project_id = spec.id
        now = datetime.now(UTC)
        rows = [
            {
                "project_id": project_id,
                "text": i.text,
                "source": i.source,
                "row_id": i.row_id,
                "digest": d,
                "eval": in_eval_slice(d, spec.eval_share, spec.eval_seed),
                "created_at": now,
            }
            # in the input's order, so item ids follow the rows; writers adding the same rows in other orders may
            # deadlock on PostgreSQL, and the loser's write is retried
            for d, i in unique.items()
        ]

        def insert(conn: sa.Connection) -> tuple[int, dict[str, int]]:
            added = 0
            for chunk in _chunks(rows):
                statement = self._insert(ItemRow).values(list(chunk)).on_conflict_do_nothing()
                added += len(conn.execute(statement.returning(ItemRow.id)).all())
            ids: dict[str, int] = {}
            for chunk_digests in _chunks(sorted(unique)):
                query = sa.select(ItemRow.digest, ItemRow.id).where(
                    ItemRow.project_id == project_id, ItemRow.digest.in_(chunk_digests)
                )
                ids.update((row.digest, row.id) for row in conn.execute(query))
            return added, ids

        added, ids = self._write(f"add items to '{project}'", insert)
        return AddedItems(added=added, duplicates=len(items) - added, ids=tuple(ids[d] for d in digests))

    def items(self, project: str, ids: Iterable[int] | None = None) -> list[Item]:
        """The project's items (those of ``ids`` only, when given), by id."""
        with self._read() as conn:
            project_id = self._project(conn, project).id
            return self._items(conn, project_id, ids)

    def get_item(self, project: str, item_id: int) -> Item:
        """One item of the project.

        Raises:
            ItemNotFound: the project has no item ``item_id``.
        """
        found = self.items(project, [item_id])
        if not found:
            raise ItemNotFound(f"Annotation project '{project}' has no item {item_id}.", hint="list its items")
        return found[0]

    def _items(self, conn: sa.Connection, project_id: int, ids: Iterable[int] | None = None) -> list[Item]:
        query = sa.select(ItemRow).where(ItemRow.project_id == project_id).order_by(ItemRow.id)
        return [Item.model_validate(dict(row._mapping)) for row in _rows(conn, query, ids)]

    def _texts(self, conn: sa.Connection, project: Project, ids: Iterable[int]) -> dict[int, str]:
        """Texts of ``ids``; :class:`ItemNotFound` naming the ids the project lacks."""
        wanted = set(ids)
        texts = {item.id: item.text for item in self._items(conn, project.id, wanted)}
        missing = sorted(wanted - texts.keys())
        if missing:
            raise ItemNotFound(
                f"Annotation project '{project.name}' has no item {', '.join(map(str, missing[:10]))}"
                + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else "")
                + ".",
                hint="add the items first; item ids come from add_items",
            )
        return texts

    # --- predictions ----------------------------------------------------------------------------------------
    def add_predictions(
        self,
        project: str,
        predictions: Iterable[NewPrediction],
        *,
        round: int,
        model: str,
        model_version: str = "",
    ) -> int:
        """Store a model's answers for a round (0: the cold start); the same item, round, model and version again
        replaces the earlier prediction. Returns the number stored.

        Raises:
            ItemNotFound: an item id the project lacks.
            InvalidAnswer: a label, score or entity the project does not allow.
        """
        if round < 0:
            raise ConfigurationError(f"round must be 0 or more, not {round}.")
        if not model or len(model) > 200 or len(model_version) > 200:
            raise ConfigurationError("model must be 1-200 characters and model_version at most 200.")
        latest = {p.item_id: p for p in predictions}  # one per item: the last given
        with self._read() as conn:
            spec = self._project(conn, project)
            texts = self._texts(conn, spec, latest)
        for p in latest.values():
            check_answer(spec, texts[p.item_id], p.label, p.entities, who=f"model {model}'s prediction")
            unknown = sorted(set(p.scores) - set(spec.labels))
            if unknown:
                raise InvalidAnswer(
                    f"The prediction for item {p.item_id} scores {unknown}, which are not labels of '{project}' "
                    f"({list(spec.labels)}).",
                    hint="give scores per label of the project (entity predictions may leave scores empty)",
                )
        now = datetime.now(UTC)
        rows = [
            {
                "item_id": p.item_id,
                "round": round,
                "model": model,
                "model_version": model_version,
                "label": p.label,
                "entities": _entities_json(p.entities),
                "scores": p.scores,
                "margin": p.top_margin,
                "created_at": now,
            }
            for _, p in sorted(latest.items())
        ]

        def upsert(conn: sa.Connection) -> int:
            for chunk in _chunks(rows):
                statement = self._insert(PredictionRow).values(list(chunk))
                conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=["item_id", "round", "model", "model_version"],
                        set_={
                            c: statement.excluded[c] for c in ("label", "entities", "scores", "margin", "created_at")
                        },
                    )
                )
            return len(rows)

        return self._write(f"add predictions to '{project}'", upsert)

    def predictions(
        self, project: str, *, round: int | None = None, item_ids: Iterable[int] | None = None, latest: bool = False
    ) -> list[Prediction]:
        """The project's predictions (of one round, of some items), by item then round; ``latest``: only each
        item's newest (highest round, then last written)."""
        with self._read() as conn:
            project_id = self._project(conn, project).id
            query = (
                sa.select(PredictionRow)
                .join(ItemRow, ItemRow.id == PredictionRow.item_id)
                .where(ItemRow.project_id == project_id)
                .order_by(PredictionRow.item_id, PredictionRow.round, PredictionRow.created_at, PredictionRow.id)
            )
            if round is not None:
                query = query.where(PredictionRow.round == round)
            found = [Prediction.model_validate(dict(r._mapping)) for r in _rows(conn, query, item_ids)]
        if latest:
            found = list({p.item_id: p for p in found}.values())  # rows come oldest first per item
        return found

    # --- annotations ----------------------------------------------------------------------------------------
    def record_annotation(
        self,
        project: str,
        item_id: int,
        annotator: str,
        answer: str | Sequence[Entity] | Sequence[Mapping[str, Any]],
        *,
        seconds: float = 0.0,
        adjudicated: bool = False,
    ) -> Annotation:
        """Store ``annotator``'s answer for an item (a label, or the item's entities); a second answer by the same
        annotator replaces the first (``updated_at`` moves, ``seconds`` adds up, ``adjudicated`` is the new one's).

        ``adjudicated=True``: a reviewer's answer that wins over every other in the label snapshot (the caller
        checks the annotator's role).

        Raises:
            ItemNotFound: the project has no such item.
            InvalidAnswer: the answer does not fit the project.
        """
        new = NewAnnotation.model_validate(
            {
                "item_id": item_id,
                "annotator": annotator,
                "answer": answer,
                "seconds": seconds,
                "adjudicated": adjudicated,
            }
        )
        return self._record(project, [new], returning=True)[1][0]

    def record_annotations(self, project: str, annotations: Iterable[NewAnnotation]) -> int:
        """Store many answers at once (e.g. a simulated annotator's); as :meth:`record_annotation` for each.

        Returns the number of (item, annotator) answers stored.
        """
        return self._record(project, list(annotations), returning=False)[0]

    def _record(
        self, project: str, annotations: Sequence[NewAnnotation], *, returning: bool
    ) -> tuple[int, list[Annotation]]:
        """Validate and upsert; the count of (item, annotator) rows written, and the rows when ``returning``."""
        merged: dict[tuple[int, str], NewAnnotation] = {}
        for a in annotations:  # one row per (item, annotator) per statement: the last answer, the seconds summed
            held = merged.get((a.item_id, a.annotator))
            merged[a.item_id, a.annotator] = (
                a if held is None else a.model_copy(update={"seconds": a.seconds + held.seconds})
            )
        with self._read() as conn:
            spec = self._project(conn, project)
            texts = self._texts(conn, spec, {a.item_id for a in merged.values()})
        for a in merged.values():
            label = a.answer if isinstance(a.answer, str) else None
            entities = None if isinstance(a.answer, str) else a.answer
            check_answer(spec, texts[a.item_id], label, entities, who=f"{a.annotator}'s answer")
        now = datetime.now(UTC)
        rows = [
            {
                "item_id": a.item_id,
                "annotator": a.annotator,
                "label": a.answer if isinstance(a.answer, str) else None,
                "entities": None if isinstance(a.answer, str) else _entities_json(a.answer),
                "seconds": a.seconds,
                "adjudicated": a.adjudicated,
                "created_at": now,
                "updated_at": now,
            }
            for _, a in sorted(merged.items())
        ]
        table = _table(AnnotationRow)

        def upsert(conn: sa.Connection) -> tuple[int, list[Annotation]]:
            stored: list[Annotation] = []
            for chunk in _chunks(rows):
                statement = self._insert(AnnotationRow).values(list(chunk))
                statement = statement.on_conflict_do_update(
                    index_elements=["item_id", "annotator"],
                    set_={
                        "label": statement.excluded.label,
                        "entities": statement.excluded.entities,
                        "seconds": table.c.seconds + statement.excluded.seconds,
                        "adjudicated": statement.excluded.adjudicated,
                        "updated_at": statement.excluded.updated_at,
                    },
                )
                if returning:
                    found = conn.execute(statement.returning(*table.c)).all()
                    stored += [Annotation.model_validate(dict(row._mapping)) for row in found]
                else:
                    conn.execute(statement)
            return len(rows), stored

        return self._write(f"record annotations in '{project}'", upsert)

    def delete_annotation(self, project: str, item_id: int, annotator: str) -> Annotation:
        """Take back ``annotator``'s answer to an item (an undo): the row is deleted, so the label snapshot, the
        counts and agreement read as if it had never been given, and the item (when queued) is leased to
        ``annotator`` so it comes back to them first. Only the annotator's own answer goes: an adjudicated answer
        can be undone by its reviewer only (it is their row), and nobody's undo touches another's answer.

        Returns:
            The answer deleted.

        Raises:
            ItemNotFound: the project has no such item.
            AnnotationNotFound: ``annotator`` has no answer to it.
        """
        self.get_item(project, item_id)
        table = _table(AnnotationRow)

        def delete(conn: sa.Connection) -> Annotation | None:
            statement = sa.delete(AnnotationRow).where(
                AnnotationRow.item_id == item_id, AnnotationRow.annotator == annotator
            )
            row = conn.execute(statement.returning(*table.c)).first()
            if row is None:
                return None
            self._lease(conn, [item_id], annotator, LEASE_S)
            return Annotation.model_validate(dict(row._mapping))

        deleted = self._write(f"delete {annotator}'s answer to item {item_id} in '{project}'", delete)
        if deleted is None:
            raise AnnotationNotFound(
                f"{annotator} has no answer to item {item_id} of '{project}' to take back.",
                hint="an answer can be taken back only by the one who gave it (an adjudication by its reviewer)",
            )
        return deleted

    def annotations(self, project: str, *, annotator: str | None = None) -> list[Annotation]:
        """Every annotation of the project (of one annotator), by item then annotator."""
        with self._read() as conn:
            project_id = self._project(conn, project).id
            query = (
                sa.select(AnnotationRow)
                .join(ItemRow, ItemRow.id == AnnotationRow.item_id)
                .where(ItemRow.project_id == project_id)
                .order_by(AnnotationRow.item_id, AnnotationRow.annotator)
            )
            if annotator is not None:
                query = query.where(AnnotationRow.annotator == annotator)
            return [Annotation.model_validate(dict(row._mapping)) for row in conn.execute(query).all()]

    def label_count(self, project: str) -> int:
        """Items outside the evaluation slice with an answer: the training labels of the label snapshot (one
        ``COUNT`` query, cheap enough to run after every answer)."""
        with self._read() as conn:
            project_id = self._project(conn, project).id
            return int(
                conn.execute(
                    sa.select(sa.func.count(sa.distinct(AnnotationRow.item_id)))
                    .join(ItemRow, ItemRow.id == AnnotationRow.item_id)
                    .where(ItemRow.project_id == project_id, ItemRow.eval.is_(False))
                ).scalar_one()
            )

    def mark_due(self, project: str, label_count: int) -> bool:
        """Record that a training became due at ``label_count`` labels, unless it was said already at that count or
        a higher one: one conditional ``UPDATE``, so of writers racing to say it exactly one gets ``True`` (and
        emits the event), and a count that falls (an undo) and rises again says nothing twice."""

        def mark(conn: sa.Connection) -> bool:
            project_id = self._project(conn, project).id
            statement = (
                sa.update(ProjectRow)
                .where(ProjectRow.id == project_id, ProjectRow.due_mark < label_count)
                .values(due_mark=label_count)
            )
            return bool(conn.execute(statement).rowcount)

        return self._write(f"mark a training of '{project}' due", mark)

    def next_items(
        self,
        project: str,
        annotator: str,
        limit: int = 1,
        *,
        exclude: Iterable[int] = (),
        lease_s: float = LEASE_S,
    ) -> list[Item]:
        """Up to ``limit`` items for ``annotator`` to label next, never one they have answered already nor one of
        ``exclude`` (e.g. their skips):

        1. queued items nobody has answered yet and nobody else holds a lease on, by round (oldest first), then
           score (most useful first), then the order they were queued in (the sampler's seeded tie-break); each is
           leased to ``annotator`` for ``lease_s`` seconds (asking again renews their own lease);
        2. then evaluation items that still need answers (fewer than the project's ``eval_annotators`` people
           answered them, adjudications aside), those answered by someone else first (to complete a pair), then
           by id. These are meant for several people and are not leased.

        The lease is one conditional ``UPDATE`` per item (free, or already the caller's), so of two callers racing
        for an item on SQLite or PostgreSQL exactly one wins and the other takes the next free item. A lease ends
        when the item is answered, skipped (:meth:`release`) or at ``leased_until``. Items neither queued nor in the
        evaluation slice are never served: a round (:meth:`queue_items`) puts them in the queue.
        """
        if limit < 1:
            raise ConfigurationError(f"limit must be 1 or more, not {limit}.")
        if not math.isfinite(lease_s) or lease_s <= 0:
            raise ConfigurationError(f"lease_s must be a positive number of seconds, not {lease_s}.")
        mine = sa.select(AnnotationRow.id).where(
            AnnotationRow.item_id == ItemRow.id, AnnotationRow.annotator == annotator
        )
        anyone = sa.select(AnnotationRow.id).where(AnnotationRow.item_id == ItemRow.id)
        left_out = set(exclude)
        with self._read() as conn:
            spec = self._project(conn, project)
        rows: list[sa.Row[Any]] = []
        for _ in range(LEASE_TRIES):
            now = time.time()
            queued = (
                sa.select(ItemRow)
                .join(QueueRow, QueueRow.item_id == ItemRow.id)
                .where(ItemRow.project_id == spec.id, ~anyone.exists(), _free(annotator, now))
                .order_by(QueueRow.round, QueueRow.score.desc(), QueueRow.position, ItemRow.id)
                .limit(limit - len(rows) + len(left_out))
            )
            with self._read() as conn:
                found = [r for r in conn.execute(queued).all() if r.id not in left_out][: limit - len(rows)]
            if not found:
                break
            ids = [r.id for r in found]
            won = self._write(
                f"lease items in '{project}'", partial(self._lease, item_ids=ids, annotator=annotator, lease_s=lease_s)
            )
            rows += [r for r in found if r.id in won]
            left_out |= {r.id for r in found}
            if len(rows) >= limit:
                break
        if len(rows) < limit:
            answers = (
                sa.select(sa.func.count(AnnotationRow.id))
                .where(AnnotationRow.item_id == ItemRow.id, AnnotationRow.adjudicated.is_(False))
                .scalar_subquery()
            )
            evaluation = (
                sa.select(ItemRow)
                .where(
                    ItemRow.project_id == spec.id,
                    ItemRow.eval.is_(True),
                    ~mine.exists(),
                    answers < spec.eval_annotators,
                )
                .order_by(answers.desc(), ItemRow.id)
                .limit(limit - len(rows) + len(left_out))
            )
            with self._read() as conn:
                rows += [r for r in conn.execute(evaluation).all() if r.id not in left_out][: limit - len(rows)]
        return [Item.model_validate(dict(row._mapping)) for row in rows]

    @staticmethod
    def _lease(conn: sa.Connection, item_ids: Sequence[int], annotator: str, lease_s: float) -> set[int]:
        """Lease each free item (or one already ``annotator``'s) to them; the ids won."""
        won: set[int] = set()
        for item_id in item_ids:
            now = time.time()
            statement = (
                sa.update(QueueRow)
                .where(QueueRow.item_id == item_id, _free(annotator, now))
                .values(leased_to=annotator, leased_until=now + lease_s)
            )
            if conn.execute(statement).rowcount == 1:
                won.add(item_id)
        return won

    def lease(self, project: str, item_id: int, annotator: str, lease_s: float = LEASE_S) -> bool:
        """Lease a queued item to ``annotator`` (e.g. the item an undo shows again); whether they hold it now
        (false: not queued, or another annotator's lease)."""
        self.get_item(project, item_id)
        return item_id in self._write(
            f"lease item {item_id} in '{project}'", lambda conn: self._lease(conn, [item_id], annotator, lease_s)
        )

    def release(self, project: str, item_id: int, annotator: str) -> bool:
        """End ``annotator``'s lease on an item (they skipped it): others may be served it at once. Whether they
        held one."""
        self.get_item(project, item_id)  # ItemNotFound for an item of another project

        def free(conn: sa.Connection) -> bool:
            statement = (
                sa.update(QueueRow)
                .where(QueueRow.item_id == item_id, QueueRow.leased_to == annotator, QueueRow.leased_until > 0)
                .values(leased_to="", leased_until=0.0)
            )
            return bool(conn.execute(statement).rowcount)

        return self._write(f"release item {item_id} in '{project}'", free)

    # --- the queue and rounds -------------------------------------------------------------------------------
    def queue_items(
        self,
        project: str,
        round: int,
        item_ids: Sequence[int],
        *,
        strategy: str,
        scores: Sequence[float] | None = None,
    ) -> int:
        """Queue items chosen by a round for labelling (``scores``: the sampler's, higher first; equal scores keep
        the input's order; default: the input's order). An item queued already keeps its first round and score, so
        queueing again adds nothing.

        Returns:
            Items newly queued.

        Raises:
            ItemNotFound: an item id the project lacks.
            ConfigurationError: an item of the evaluation slice (never queued: the sampler must not choose it),
                scores not one per item, or a negative round.
        """
        if round < 0:
            raise ConfigurationError(f"round must be 0 or more, not {round}.")
        if not strategy or len(strategy) > 63:
            raise ConfigurationError("strategy must be 1-63 characters.")
        ids = list(item_ids)
        if scores is None:
            scores = [float(len(ids) - position) for position in range(len(ids))]
        if len(scores) != len(ids):
            raise ConfigurationError(f"{len(scores)} scores for {len(ids)} items: give one score per item.")
        if not all(math.isfinite(v) for v in scores):
            raise ConfigurationError("queue scores must be finite numbers.")
        with self._read() as conn:
            spec = self._project(conn, project)
            self._texts(conn, spec, ids)
            held = self._items(conn, spec.id, ids)
        evaluation = sorted(item.id for item in held if item.eval)
        if evaluation:
            raise ConfigurationError(
                f"Items {evaluation[:10]} of '{project}' are in the evaluation slice and are never queued.",
                hint="leave evaluation items out of the rows a round chooses (the sampler's exclude=)",
            )
        now = datetime.now(UTC)
        first: dict[int, tuple[float, int]] = {}
        for position, (item_id, score) in enumerate(zip(ids, scores, strict=True)):
            first.setdefault(item_id, (float(score), position))
        rows = [
            {"item_id": i, "round": round, "strategy": strategy, "score": v, "position": p, "created_at": now}
            for i, (v, p) in sorted(first.items())
        ]

        def insert(conn: sa.Connection) -> int:
            added = 0
            for chunk in _chunks(rows):
                statement = self._insert(QueueRow).values(list(chunk)).on_conflict_do_nothing()
                added += len(conn.execute(statement.returning(QueueRow.item_id)).all())
            return added

        return self._write(f"queue items in '{project}'", insert)

    def queue(self, project: str, *, round: int | None = None, open_only: bool = False) -> list[QueuedItem]:
        """The project's queued items (of one round; only those nobody has answered with ``open_only``), in the
        order :meth:`next_items` serves them."""
        with self._read() as conn:
            project_id = self._project(conn, project).id
            query = (
                sa.select(QueueRow)
                .join(ItemRow, ItemRow.id == QueueRow.item_id)
                .where(ItemRow.project_id == project_id)
                .order_by(QueueRow.round, QueueRow.score.desc(), QueueRow.position, QueueRow.item_id)
            )
            if round is not None:
                query = query.where(QueueRow.round == round)
            if open_only:
                query = query.where(~sa.select(AnnotationRow.id).where(AnnotationRow.item_id == ItemRow.id).exists())
            return [QueuedItem.model_validate(dict(row._mapping)) for row in conn.execute(query).all()]

    def record_round(self, project: str, record: Round) -> Round:
        """Store an annotation round's bookkeeping; the same round number again replaces it (a rerun)."""
        return self._upsert_record(project, RoundRow, record, ("project_id", "round"), f"record round {record.round}")

    def rounds(self, project: str) -> list[Round]:
        """The project's annotation rounds, oldest first."""
        with self._read() as conn:
            project_id = self._project(conn, project).id
            query = sa.select(RoundRow).where(RoundRow.project_id == project_id).order_by(RoundRow.round)
            return [Round.model_validate(dict(row._mapping)) for row in conn.execute(query).all()]

    def record_training(self, project: str, record: Training) -> Training:
        """Store a model trained on a label snapshot; the same model name and version again replaces it."""
        keys = ("project_id", "model_name", "model_version")
        return self._upsert_record(project, TrainingRow, record, keys, "record a training")

    def _upsert_record(self, project: str, row: type[Base], record: R, keys: tuple[str, ...], what: str) -> R:
        """Insert ``record`` as a row of ``row``'s table, or update every column but the keys and ``created_at``
        of the row with the same keys; returns the record with its ``created_at``."""
        values: dict[str, Any] = {
            **record.model_dump(exclude={"created_at"}),
            "created_at": getattr(record, "created_at", None) or datetime.now(UTC),
        }
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        kept = {*keys, "created_at"}

        def upsert(conn: sa.Connection) -> None:
            values["project_id"] = self._project(conn, project).id
            statement = self._insert(row).values(values)
            update = {c: statement.excluded[c] for c in values if c not in kept}
            conn.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=update))

        self._write(f"{what} of '{project}'", upsert)
        return record.model_copy(update={"created_at": values["created_at"]})

    def trainings(self, project: str) -> list[Training]:
        """The models trained for the project, in the order they were first recorded."""
        with self._read() as conn:
            project_id = self._project(conn, project).id
            query = sa.select(TrainingRow).where(TrainingRow.project_id == project_id).order_by(TrainingRow.id)
            return [Training.model_validate(dict(row._mapping)) for row in conn.execute(query).all()]

    def status(self, project: str) -> ProjectStatus:
        """Counts of items, labelled items, annotations, annotators, evaluation items and queued items; the latest
        round."""
        with self._read() as conn:
            project_id = self._project(conn, project).id
            items, eval_items = conn.execute(
                sa.select(sa.func.count(), sa.func.count().filter(ItemRow.eval.is_(True)))
                .select_from(ItemRow)
                .where(ItemRow.project_id == project_id)
            ).one()
            queued = conn.execute(
                sa.select(sa.func.count())
                .select_from(QueueRow)
                .join(ItemRow, ItemRow.id == QueueRow.item_id)
                .where(ItemRow.project_id == project_id)
            ).scalar_one()
            latest = conn.execute(sa.select(sa.func.max(RoundRow.round)).where(RoundRow.project_id == project_id))
            done = conn.execute(
                sa.select(
                    sa.func.count(sa.distinct(AnnotationRow.item_id)),
                    sa.func.count(AnnotationRow.id),
                    sa.func.count(sa.distinct(AnnotationRow.annotator)),
                )
                .join(ItemRow, ItemRow.id == AnnotationRow.item_id)
                .where(ItemRow.project_id == project_id)
            ).one()
            round_ = latest.scalar_one()
        return ProjectStatus(
            project=project,
            items=items,
            labelled_items=done[0],
            annotations=done[1],
            annotators=done[2],
            eval_items=eval_items,
            queued=queued,
            round=round_,
        )

    # --- the label snapshot and exports ---------------------------------------------------------------------
    def label_snapshot(self, project: str) -> LabelSnapshot:
        """One answer per labelled item, with the snapshot's digest: an adjudicated answer when there is one, else
        the majority of the annotators' latest answers, a tie going to the answer given last (see
        :func:`~openautoglm.core.annotation.answers.resolve`). Rows say whether the item is in the evaluation
        slice, adjudicated, or agreed by two or more annotators."""
        spec = self.get_project(project)
        by_item = self._by_item(project)
        items = {item.id: item for item in self.items(project, by_item)} if by_item else {}
        rows = []
        for item_id in sorted(by_item):
            settled = resolve(by_item[item_id])
            item = items[item_id]
            rows.append(
                SnapshotRow(
                    item_id=item_id,
                    source=item.source,
                    row_id=item.row_id,
                    text=item.text,
                    label=settled.winner.label,
                    entities=settled.winner.entities,
                    votes=settled.votes,
                    annotators=len(by_item[item_id]),
                    digest=item.digest,
                    eval=item.eval,
                    adjudicated=settled.adjudicated,
                    agreed=settled.agreed,
                )
            )
        digest = snapshot_digest((r.digest, answer_key(r.label, r.entities)) for r in rows)
        return LabelSnapshot(project=project, task_type=spec.task_type, digest=digest, rows=tuple(rows))

    def _by_item(self, project: str) -> dict[int, list[Annotation]]:
        by_item: dict[int, list[Annotation]] = defaultdict(list)
        for annotation in self.annotations(project):
            by_item[annotation.item_id].append(annotation)
        return by_item

    def disagreements(self, project: str) -> list[Disagreement]:
        """The reviewer's queue: items whose (non-adjudicated) answers differ and that nobody has adjudicated, by
        item id."""
        by_item = self._by_item(project)
        disputed = sorted(item_id for item_id, answers in by_item.items() if resolve(answers).disputed)
        items = {item.id: item for item in self.items(project, disputed)} if disputed else {}
        return [Disagreement(item=items[i], annotations=tuple(by_item[i])) for i in disputed]

    def agreement(self, project: str) -> Agreement:
        """Agreement between the annotators over the items two or more answered (adjudications left out): Cohen's
        kappa for two annotators, Fleiss' for more, overall and per label; NER over characters' BIO tags, with the
        pairwise span F1 (see :mod:`openautoglm.core.annotation.agreement`)."""
        spec = self.get_project(project)
        plain: dict[int, dict[str, Annotation]] = defaultdict(dict)
        for annotation in self.annotations(project):
            if not annotation.adjudicated:
                plain[annotation.item_id][annotation.annotator] = annotation
        doubled = {item_id: answers for item_id, answers in plain.items() if len(answers) >= 2}
        if spec.task_type == "text_classification":
            return label_agreement(
                {i: {who: a.label or "" for who, a in answers.items()} for i, answers in doubled.items()},
                spec.labels,
            )
        lengths = {item.id: len(item.text) for item in self.items(project, doubled)} if doubled else {}
        return entity_agreement(
            {i: {who: a.entities or () for who, a in answers.items()} for i, answers in doubled.items()},
            lengths,
            spec.entity_types,
        )

    def export(self, project: str, path: str | Path, *, format: ExportFormat | None = None) -> LabelSnapshot:
        """Write the label snapshot to ``path`` (CSV or JSONL; by default from the suffix), replacing the file
        whole (written beside it, then renamed). Returns the snapshot written.

        CSV holds entities as JSON text; JSONL as a list of ``{text, type, start, end}``.
        """
        path = Path(path)
        chosen = format or path.suffix.lower().lstrip(".")
        if chosen not in ("csv", "jsonl"):
            raise ConfigurationError(
                f"Cannot tell the export format of '{path.name}'.", hint="name a .csv or .jsonl file, or pass format="
            )
        snapshot = self.label_snapshot(project)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            if chosen == "csv":
                snapshot.frame().to_csv(partial, index=False, encoding="utf-8")
            else:
                answer = "label" if snapshot.task_type == "text_classification" else "entities"
                drop = {"entities"} if answer == "label" else {"label"}
                with partial.open("w", encoding="utf-8") as out:
                    for row in snapshot.rows:
                        out.write(json.dumps(row.model_dump(mode="json", exclude=drop), ensure_ascii=False) + "\n")
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return snapshot

    def mlflow_dataset(
        self,
        project: str,
        *,
        run_id: str | None = None,
        context: str = "training",
        tracking_uri: str | None = None,
    ) -> PandasDataset:
        """The label snapshot as an MLflow dataset (``mlflow.data.from_pandas``): named ``<project>-labels``, its
        digest the snapshot digest's first 36 characters (MLflow's limit), its source the store (password hidden)
        and project; logged as an input of run ``run_id`` when given, with the whole digest as the ``label_digest``
        tag."""
        from openautoglm._env import apply_defaults

        apply_defaults()
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.pandas_dataset import from_pandas

        snapshot = self.label_snapshot(project)
        with warnings.catch_warnings():  # its hint on integer columns: ids and counts are never missing
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer", category=UserWarning)
            dataset = from_pandas(
                snapshot.frame(),
                source=CodeDatasetSource(
                    {"openautoglm.annotation_store": self.safe_url, "openautoglm.project": project}
                ),
                targets="label" if snapshot.task_type == "text_classification" else None,
                name=f"{project}-labels",
                digest=snapshot.digest[:MLFLOW_DIGEST_CHARS],
            )
            described = dataset.to_dict()  # the schema is inferred here, on first use
        if run_id is not None:
            from mlflow.entities import Dataset as DatasetEntity
            from mlflow.entities import DatasetInput, InputTag
            from mlflow.tracking import MlflowClient
            from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

            tags = [
                InputTag(MLFLOW_DATASET_CONTEXT, context),
                InputTag("label_digest", snapshot.digest),
                InputTag("labelled_items", str(len(snapshot.rows))),
            ]
            entity = DatasetEntity(**described)
            MlflowClient(tracking_uri).log_inputs(run_id, datasets=[DatasetInput(entity, tags=tags)])
        return dataset


def _add_missing_columns(engine: sa.Engine) -> None:
    """Add the columns a newer version of these tables has to tables an older one made (each with its default,
    so rows already held read as before): ``create_all`` makes missing tables only. A column another process adds
    meanwhile is left as it is."""
    inspector = sa.inspect(engine)
    quote = engine.dialect.identifier_preparer.quote
    for table in Base.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        held = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in held:
                continue
            default = column.default.arg if isinstance(column.default, sa.ColumnDefault) else None
            if default is None or callable(default):
                raise StoreUnavailable(
                    f"The annotation store's table {table.name} lacks the column {column.name}, which has no default.",
                    hint="export the labels, then recreate the store (a newer version changed its tables)",
                )
            value = sa.literal(default, column.type).compile(
                dialect=engine.dialect, compile_kwargs={"literal_binds": True}
            )
            kind = column.type.compile(dialect=engine.dialect)
            statement = f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} {kind} DEFAULT {value}"
            try:
                with engine.begin() as conn:
                    conn.execute(sa.text(statement))
            except (OperationalError, ProgrammingError):
                if column.name not in {c["name"] for c in sa.inspect(engine).get_columns(table.name)}:
                    raise
            log.info("annotation store: added %s.%s", table.name, column.name)


def _free(annotator: str, now: float) -> sa.ColumnElement[bool]:
    """A queue row nobody else holds a lease on at ``now``."""
    return sa.or_(QueueRow.leased_until <= now, QueueRow.leased_to == annotator)


def _transient(error: OperationalError) -> bool:
    """Whether waiting may help: SQLite's lock held by another writer, a PostgreSQL deadlock or serialisation
    failure."""
    return any(marker in str(error).lower() for marker in _TRANSIENT)


def _pause(attempt: int) -> float:
    """A jittered, growing pause: 25 ms doubling to 2 s at most, so racing writers spread out."""
    return min(2.0, 0.025 * 2.0**attempt) * random.uniform(0.5, 1.0)


def _sqlite_pragmas(busy_timeout_s: float) -> Callable[[Any, Any], None]:
    """A connect hook: wait for other writers' locks, use WAL (readers do not block the writer), enforce foreign
    keys."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() not in ("wal", "memory"):
                with contextlib.suppress(sqlite3.OperationalError):  # another connection is switching it to WAL
                    cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    return on_connect
