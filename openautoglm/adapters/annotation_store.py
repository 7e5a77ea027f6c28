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
import hashlib
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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from openautoglm.core.errors import ConfigurationError, OpenAutoGLMError
from openautoglm.core.nlp.types import Entity

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.data.pandas_dataset import PandasDataset

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Task types a project may have: a label per item, or entity spans.
AnnotationTask = Literal["text_classification", "ner"]
ExportFormat = Literal["csv", "jsonl"]
#: Project names: they appear in URLs and file names.
NAME_PATTERN = r"^[\w][\w.-]{0,62}$"
#: Tries of a write that finds the database locked (SQLite) or deadlocked (PostgreSQL), with a growing pause.
WRITE_ATTEMPTS = 12
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


class InvalidAnswer(ConfigurationError):
    """An answer (a person's or a model's) that the project does not allow: a label outside its labels, an entity
    type outside its entity types, a span that is not the text at its offsets."""


class StoreBusy(OpenAutoGLMError):
    """The database stayed locked through every retry of a write."""


class StoreUnavailable(OpenAutoGLMError):
    """The database cannot be reached or its tables cannot be made."""


# --- values crossing the store's boundary -------------------------------------------------------------------


class ProjectSpec(BaseModel):
    """What a project asks of its annotators.

    Attributes:
        name: Letters, digits, ``_``, ``.``, ``-``; 63 characters at most.
        task_type: ``text_classification`` (one label per item) or ``ner`` (entity spans).
        labels: The labels (classification; two or more, distinct).
        entity_types: The entity types (NER; one or more, distinct).
        guidelines: What the annotators read first (Markdown).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    task_type: AnnotationTask = "text_classification"
    labels: tuple[str, ...] = ()
    entity_types: tuple[str, ...] = ()
    guidelines: str = Field(default="", max_length=100_000)

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
    """A stored item."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int
    text: str
    source: str
    row_id: str
    digest: str
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
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    item_id: int
    annotator: str = Field(min_length=1, max_length=200)
    answer: str | tuple[Entity, ...]
    seconds: float = Field(default=0.0, ge=0.0, le=86_400.0)


class Annotation(BaseModel):
    """A stored annotation (``seconds``: the time spent over every label of this item by this annotator)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int
    item_id: int
    annotator: str
    label: str | None
    entities: tuple[Entity, ...] | None
    seconds: float
    created_at: datetime
    updated_at: datetime

    @property
    def answer(self) -> str | tuple[Entity, ...]:
        return self.label if self.label is not None else (self.entities or ())


class ProjectStatus(BaseModel):
    """How far a project is: items, items with at least one annotation, annotations, distinct annotators."""

    model_config = ConfigDict(frozen=True)

    project: str
    items: int
    labelled_items: int
    annotations: int
    annotators: int


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
        columns = ["item_id", "source", "row_id", "text", answer, "votes", "annotators", "digest"]
        records = [
            {
                **row.model_dump(include=set(columns)),
                "entities": None if row.entities is None else canonical_entities(row.entities),
            }
            for row in self.rows
        ]
        return pd.DataFrame.from_records(records, columns=columns)


# --- pure helpers ---------------------------------------------------------------------------------------------


def item_digest(text: str) -> str:
    """An item's content digest: SHA-256 of the text's UTF-8 bytes, as hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_entities(entities: Iterable[Entity]) -> str:
    """Entities as canonical JSON: sorted by offsets then type, keys sorted, no spaces."""
    ordered = sorted(entities, key=lambda e: (e.start, e.end, e.type, e.text))
    return json.dumps([e.as_dict() for e in ordered], ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def snapshot_digest(pairs: Iterable[tuple[str, str]]) -> str:
    """SHA-256 over sorted ``(item digest, answer)`` pairs, one ``digest\\tanswer\\n`` line each."""
    lines = "".join(f"{digest}\t{answer}\n" for digest, answer in sorted(pairs))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def majority(annotations: Sequence[Annotation]) -> tuple[Annotation, int]:
    """The answer most annotators gave an item, and its vote count; a tie goes to the answer labelled last.

    With one annotator that is their (latest) answer. Adjudication (a reviewer's answer winning) is not part of
    the store yet.
    """
    if not annotations:
        raise ValueError("majority of no annotations")
    groups: dict[str, list[Annotation]] = defaultdict(list)
    for annotation in annotations:
        groups[_answer_key(annotation.label, annotation.entities)].append(annotation)
    votes = {key: len(group) for key, group in groups.items()}
    best = max(
        groups,
        key=lambda key: (votes[key], max((a.updated_at, a.id) for a in groups[key])),
    )
    latest = max(groups[best], key=lambda a: (a.updated_at, a.id))
    return latest, votes[best]


def _answer_key(label: str | None, entities: Iterable[Entity] | None) -> str:
    return label if label is not None else canonical_entities(entities or ())


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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ItemRow(Base):
    __tablename__ = "openautoglm_annotation_items"
    __table_args__ = (sa.UniqueConstraint("project_id", "digest", name="openautoglm_annotation_item_digest"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey(ProjectRow.id, ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.String(500))
    row_id: Mapped[str] = mapped_column(sa.String(200))
    digest: Mapped[str] = mapped_column(sa.String(64))
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


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

        Returns:
            Items added, duplicates (held already, or repeated in ``items``), and each input's item id in order.
        """
        items = list(items)
        digests = [item.digest for item in items]
        unique: dict[str, NewItem] = {}
        for digest, item in zip(digests, items, strict=True):
            unique.setdefault(digest, item)
        with self._read() as conn:
            project_id = self._project(conn, project).id
        now = datetime.now(UTC)
        rows = [
            {
                "project_id": project_id,
                "text": i.text,
                "source": i.source,
                "row_id": i.row_id,
                "digest": d,
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
            _check_answer(spec, texts[p.item_id], p.label, p.entities, who=f"model {model}'s prediction")
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
    ) -> Annotation:
        """Store ``annotator``'s answer for an item (a label, or the item's entities); a second answer by the same
        annotator replaces the first (``updated_at`` moves, ``seconds`` adds up).

        Raises:
            ItemNotFound: the project has no such item.
            InvalidAnswer: the answer does not fit the project.
        """
        new = NewAnnotation.model_validate(
            {"item_id": item_id, "annotator": annotator, "answer": answer, "seconds": seconds}
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
            _check_answer(spec, texts[a.item_id], label, entities, who=f"{a.annotator}'s answer")
        now = datetime.now(UTC)
        rows = [
            {
                "item_id": a.item_id,
                "annotator": a.annotator,
                "label": a.answer if isinstance(a.answer, str) else None,
                "entities": None if isinstance(a.answer, str) else _entities_json(a.answer),
                "seconds": a.seconds,
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

    def next_items(
        self, project: str, annotator: str, *, limit: int = 1, among: Sequence[int] | None = None
    ) -> list[Item]:
        """Up to ``limit`` items ``annotator`` has not answered yet: by id, or in the order of ``among`` (e.g. a
        round's chosen rows, most useful first) and only those."""
        if limit < 1:
            raise ConfigurationError(f"limit must be 1 or more, not {limit}.")
        answered = sa.select(AnnotationRow.id).where(
            AnnotationRow.item_id == ItemRow.id, AnnotationRow.annotator == annotator
        )
        with self._read() as conn:
            project_id = self._project(conn, project).id
            query = sa.select(ItemRow).where(ItemRow.project_id == project_id, ~answered.exists()).order_by(ItemRow.id)
            if among is None:
                rows = list(conn.execute(query.limit(limit)).all())
            else:
                order = {item_id: position for position, item_id in reversed(list(enumerate(among)))}
                rows = sorted(_rows(conn, query, order), key=lambda r: order[r.id])[:limit]
        return [Item.model_validate(dict(row._mapping)) for row in rows]

    def status(self, project: str) -> ProjectStatus:
        """Counts of items, labelled items, annotations and annotators."""
        with self._read() as conn:
            project_id = self._project(conn, project).id
            items = conn.execute(
                sa.select(sa.func.count()).select_from(ItemRow).where(ItemRow.project_id == project_id)
            ).scalar_one()
            done = conn.execute(
                sa.select(
                    sa.func.count(sa.distinct(AnnotationRow.item_id)),
                    sa.func.count(AnnotationRow.id),
                    sa.func.count(sa.distinct(AnnotationRow.annotator)),
                )
                .join(ItemRow, ItemRow.id == AnnotationRow.item_id)
                .where(ItemRow.project_id == project_id)
            ).one()
        return ProjectStatus(
            project=project, items=items, labelled_items=done[0], annotations=done[1], annotators=done[2]
        )

    # --- the label snapshot and exports ---------------------------------------------------------------------
    def label_snapshot(self, project: str) -> LabelSnapshot:
        """One answer per labelled item: the majority of its annotators' latest answers, a tie going to the answer
        given last (see :func:`majority`), with the snapshot's digest."""
        spec = self.get_project(project)
        by_item: dict[int, list[Annotation]] = defaultdict(list)
        for annotation in self.annotations(project):
            by_item[annotation.item_id].append(annotation)
        items = {item.id: item for item in self.items(project, by_item)} if by_item else {}
        rows = []
        for item_id in sorted(by_item):
            winner, votes = majority(by_item[item_id])
            item = items[item_id]
            rows.append(
                SnapshotRow(
                    item_id=item_id,
                    source=item.source,
                    row_id=item.row_id,
                    text=item.text,
                    label=winner.label,
                    entities=winner.entities,
                    votes=votes,
                    annotators=len(by_item[item_id]),
                    digest=item.digest,
                )
            )
        digest = snapshot_digest((r.digest, _answer_key(r.label, r.entities)) for r in rows)
        return LabelSnapshot(project=project, task_type=spec.task_type, digest=digest, rows=tuple(rows))

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


def _check_answer(
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
