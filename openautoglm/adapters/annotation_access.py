"""Who may work on which annotation project, and what each annotator skipped: two tables beside the annotation
store's own, in the same database (:class:`~openautoglm.adapters.annotation_store.AnnotationStore`'s engine).

- **grants**: ``(project, subject, role)``: the token subject ``subject`` may label (``annotator``) or adjudicate
  (``reviewer``) the project ``project``. Admins set them (the REST API's grant routes, ``openautoglm annotate
  grant``); admins need none. A subject without a grant sees no trace of the project (the API answers 404, as for a
  project that does not exist).
- **skips**: ``(project, item, annotator)``: an item an annotator chose not to answer now; it leaves their queue
  until they take the skip back (undo) or answer it.

Both are written as single upserts (``INSERT ... ON CONFLICT DO NOTHING``) or deletes, so concurrent writers never
overwrite each other; SQLite waits for a writer's lock through the store's busy timeout.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from openautoglm.adapters.annotation_store import NAME_PATTERN, AnnotationStore, UTCDateTime

#: What a grant lets its subject do on a project.
GrantRole = Literal["annotator", "reviewer"]
GRANT_ROLES: tuple[GrantRole, ...] = ("annotator", "reviewer")
#: Token subjects: the ``sub`` claim as the API saw it (the annotation store's ``annotator`` column is as long).
SUBJECT_MAX = 200


class Grant(BaseModel):
    """One subject's right on one project."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project: str = Field(pattern=NAME_PATTERN)
    subject: str = Field(min_length=1, max_length=SUBJECT_MAX)
    role: GrantRole = "annotator"
    granted_by: str = Field(default="", max_length=SUBJECT_MAX)
    granted_at: datetime | None = None


class Skip(BaseModel):
    """An item an annotator skipped, and when."""

    model_config = ConfigDict(frozen=True)

    item_id: int
    annotator: str
    skipped_at: datetime


class _Base(DeclarativeBase):
    pass


class GrantRow(_Base):
    __tablename__ = "openautoglm_annotation_grants"
    __table_args__ = (sa.UniqueConstraint("project", "subject", "role", name="openautoglm_annotation_grant"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(sa.String(63), index=True)
    subject: Mapped[str] = mapped_column(sa.String(SUBJECT_MAX), index=True)
    role: Mapped[str] = mapped_column(sa.String(20))
    granted_by: Mapped[str] = mapped_column(sa.String(SUBJECT_MAX))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SkipRow(_Base):
    __tablename__ = "openautoglm_annotation_skips"
    __table_args__ = (sa.UniqueConstraint("project", "item_id", "annotator", name="openautoglm_annotation_skip"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(sa.String(63))
    item_id: Mapped[int] = mapped_column(sa.Integer)
    annotator: Mapped[str] = mapped_column(sa.String(SUBJECT_MAX), index=True)
    skipped_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AnnotationAccess:
    """Grants and skips in the annotation store's database.

    Args:
        store: The annotation store whose engine (and SQLite settings) the tables share.
    """

    def __init__(self, store: AnnotationStore) -> None:
        self.store = store
        self.engine = store.engine
        self._insert = sqlite.insert if store.backend == "sqlite" else postgresql.insert
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            # checkfirst: a table another process made in between is left as it is; create_all is idempotent
            _Base.metadata.create_all(self.engine)
            self._ready = True

    @contextlib.contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        self._ensure()
        with self.engine.begin() as conn:
            yield conn

    # --- grants ---------------------------------------------------------------------------------------------
    def grant(self, grant: Grant) -> Grant:
        """Let ``grant.subject`` work on ``grant.project`` in ``grant.role``; granting again changes nothing.

        Raises:
            ProjectNotFound: no such project (grants name existing projects only).
        """
        self.store.get_project(grant.project)
        values = {
            "project": grant.project,
            "subject": grant.subject,
            "role": grant.role,
            "granted_by": grant.granted_by,
            "granted_at": datetime.now(UTC),
        }
        with self._begin() as conn:
            conn.execute(self._insert(GrantRow).values(values).on_conflict_do_nothing())
            row = conn.execute(
                sa.select(GrantRow).where(
                    GrantRow.project == grant.project, GrantRow.subject == grant.subject, GrantRow.role == grant.role
                )
            ).one()
        return _grant(row)

    def revoke(self, project: str, subject: str, role: GrantRole) -> bool:
        """Take a grant back; whether there was one."""
        with self._begin() as conn:
            result = conn.execute(
                sa.delete(GrantRow).where(
                    GrantRow.project == project, GrantRow.subject == subject, GrantRow.role == role
                )
            )
        return bool(result.rowcount)

    def grants(self, project: str | None = None, *, subject: str | None = None) -> list[Grant]:
        """Grants (of one project, of one subject), by project, role, subject."""
        query = sa.select(GrantRow).order_by(GrantRow.project, GrantRow.role, GrantRow.subject)
        if project is not None:
            query = query.where(GrantRow.project == project)
        if subject is not None:
            query = query.where(GrantRow.subject == subject)
        with self._begin() as conn:
            return [_grant(row) for row in conn.execute(query).all()]

    def roles_on(self, project: str, subject: str) -> frozenset[GrantRole]:
        """The roles ``subject`` holds on ``project`` (empty: none)."""
        return frozenset(g.role for g in self.grants(project, subject=subject))

    def projects_of(self, subject: str) -> dict[str, frozenset[GrantRole]]:
        """The projects ``subject`` holds a grant on, with the roles held there."""
        held: dict[str, set[GrantRole]] = {}
        for g in self.grants(subject=subject):
            held.setdefault(g.project, set()).add(g.role)
        return {name: frozenset(roles) for name, roles in held.items()}

    # --- skips ----------------------------------------------------------------------------------------------
    def skip(self, project: str, item_id: int, annotator: str) -> Skip:
        """Take an item out of ``annotator``'s queue (skipping again keeps the first time)."""
        values = {"project": project, "item_id": item_id, "annotator": annotator, "skipped_at": datetime.now(UTC)}
        with self._begin() as conn:
            conn.execute(self._insert(SkipRow).values(values).on_conflict_do_nothing())
            row = conn.execute(
                sa.select(SkipRow).where(
                    SkipRow.project == project, SkipRow.item_id == item_id, SkipRow.annotator == annotator
                )
            ).one()
        return _skip(row)

    def unskip(self, project: str, item_id: int, annotator: str) -> bool:
        """Put a skipped item back in the queue; whether it was skipped."""
        with self._begin() as conn:
            result = conn.execute(
                sa.delete(SkipRow).where(
                    SkipRow.project == project, SkipRow.item_id == item_id, SkipRow.annotator == annotator
                )
            )
        return bool(result.rowcount)

    def skipped(self, project: str, annotator: str) -> list[Skip]:
        """``annotator``'s skips on ``project``, the latest first."""
        query = (
            sa.select(SkipRow)
            .where(SkipRow.project == project, SkipRow.annotator == annotator)
            .order_by(SkipRow.skipped_at.desc(), SkipRow.id.desc())
        )
        with self._begin() as conn:
            rows = conn.execute(query).all()
        return [_skip(r) for r in rows]


def _grant(row: sa.Row[Any]) -> Grant:
    return Grant.model_validate({k: v for k, v in row._mapping.items() if k != "id"})


def _skip(row: sa.Row[Any]) -> Skip:
    return Skip(item_id=row.item_id, annotator=row.annotator, skipped_at=row.skipped_at)
