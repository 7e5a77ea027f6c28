"""Saved workflows: named workflow files and their immutable versions, in any SQLAlchemy database.

SQLite (a file under the OpenAutoGLM home) by default; PostgreSQL in production (``postgresql+psycopg://...``).
One table: a row per version (name, version number from 1, content hash, logic hash, the file as canonical JSON,
when, who). :meth:`WorkflowStore.save` adds a version only when the content differs from the latest one. Two
writers saving the same name at once are ordered by the ``(name, version)`` key: the loser retries on the new
latest. On first use the starter workflows (``examples/workflows/*.json``) are added under any name the store
does not hold yet.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.workflow_file import WorkflowFile, canonical_json, content_hash, load_workflow, logic_hash

log = logging.getLogger(__name__)

#: The starter workflows, seeded on first use (a checkout's examples; absent from an installed wheel).
STARTERS = Path(__file__).resolve().parents[2] / "examples" / "workflows"
SEED_AUTHOR = "openautoglm"
MAX_VERSION = 2**31 - 1
#: Tries of a save that loses the race for the next version number to other savers (with a jittered pause).
SAVE_ATTEMPTS = 20


class WorkflowNotFound(ConfigurationError):
    """No workflow of that name, or no such version of it."""


@dataclass(frozen=True)
class StoredVersion:
    """One saved version of a workflow."""

    name: str
    version: int
    hash: str
    logic_hash: str
    created: datetime
    author: str
    file: WorkflowFile

    def meta(self) -> dict[str, Any]:
        """The version's fields as JSON (without the file)."""
        return {
            "name": self.name,
            "description": self.file.description,
            "version": self.version,
            "hash": self.hash,
            "logic_hash": self.logic_hash,
            "created": self.created.isoformat(),
            "author": self.author,
        }


@dataclass(frozen=True)
class SaveResult:
    """What :meth:`WorkflowStore.save` did: the latest version, and whether it already held this content."""

    stored: StoredVersion
    unchanged: bool


class WorkflowStore:
    """Workflows and their versions in one table of a SQLAlchemy database.

    Args:
        url: A SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://user@host/db``).
        table_prefix: Prefix of the table name (several stores in one database or schema).
        starters: Folder of v1 workflow files added on first use under names the store lacks (None: none).
    """

    def __init__(self, url: str, *, table_prefix: str = "openautoglm_", starters: Path | None = STARTERS) -> None:
        self.url = url
        parsed = sa.engine.make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        metadata = sa.MetaData()
        self.table = sa.Table(
            f"{table_prefix}workflow_versions",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("name", sa.String(63), nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("content_hash", sa.String(64), nullable=False),
            sa.Column("logic_hash", sa.String(64), nullable=False),
            sa.Column("file", sa.Text, nullable=False),
            sa.Column("created", sa.DateTime(timezone=True), nullable=False),
            sa.Column("author", sa.String(200), nullable=False),
            sa.UniqueConstraint("name", "version", name=f"{table_prefix}workflow_name_version"),
        )
        self.metadata = metadata
        self.starters = starters
        self._ready = False
        self._lock = threading.Lock()

    # --- set-up -------------------------------------------------------------------------------------------
    def _ensure(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            try:
                self.metadata.create_all(self.engine)
            except (OperationalError, ProgrammingError, IntegrityError):
                self.metadata.create_all(self.engine)  # another process created it between check and create
            if self.starters is not None:
                self._seed(sorted(self.starters.glob("*.json")) if self.starters.is_dir() else [])
            self._ready = True

    def _seed(self, files: Iterable[Path]) -> None:
        with self.engine.connect() as conn:
            held = set(conn.execute(sa.select(self.table.c.name).distinct()).scalars())
        for path in files:
            try:
                file = load_workflow(json.loads(path.read_text(encoding="utf-8")), name=path.stem)
            except (ValueError, OSError) as error:  # a broken starter must not stop the store
                log.warning("starter workflow %s skipped: %s", path.name, str(error).splitlines()[0])
                continue
            if file.name not in held:
                # Version 1 or nothing: another process (an API replica) may be seeding it at the same moment.
                with contextlib.suppress(IntegrityError):
                    self._insert_next(file, SEED_AUTHOR, after=0)
                held.add(file.name)

    # --- reads --------------------------------------------------------------------------------------------
    def _row(self, row: sa.Row[tuple[object, ...]]) -> StoredVersion:
        created = row.created
        if isinstance(created, datetime) and created.tzinfo is None:  # SQLite drops the zone; it was UTC
            created = created.replace(tzinfo=UTC)
        return StoredVersion(
            name=row.name,
            version=row.version,
            hash=row.content_hash,
            logic_hash=row.logic_hash,
            created=created,
            author=row.author,
            file=WorkflowFile.model_validate_json(row.file),
        )

    def get(self, name: str, version: int | None = None) -> StoredVersion:
        """A version of ``name`` (the latest when ``version`` is None).

        Raises:
            WorkflowNotFound: no such workflow or version.
        """
        self._ensure()
        t = self.table
        query = sa.select(t).where(t.c.name == name)
        query = query.where(t.c.version == version) if version is not None else query.order_by(t.c.version.desc())
        with self.engine.connect() as conn:
            row = conn.execute(query.limit(1)).first()
        if row is None:
            if version is not None and self._exists(name):
                raise WorkflowNotFound(f"Workflow '{name}' has no version {version}.", hint="list its versions")
            raise WorkflowNotFound(f"No workflow named '{name}'.", hint="list the workflows")
        return self._row(row)

    def _exists(self, name: str) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(sa.select(self.table.c.id).where(self.table.c.name == name).limit(1)).first() is not None
            )

    def versions(self, name: str) -> list[StoredVersion]:
        """Every version of ``name``, newest first.

        Raises:
            WorkflowNotFound: no such workflow.
        """
        self._ensure()
        t = self.table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).where(t.c.name == name).order_by(t.c.version.desc())).all()
        if not rows:
            raise WorkflowNotFound(f"No workflow named '{name}'.", hint="list the workflows")
        return [self._row(r) for r in rows]

    def list(self) -> list[StoredVersion]:
        """The latest version of every workflow, by name."""
        self._ensure()
        t = self.table
        latest = sa.select(t.c.name, sa.func.max(t.c.version).label("version")).group_by(t.c.name).subquery()
        query = (
            sa.select(t)
            .join(latest, sa.and_(t.c.name == latest.c.name, t.c.version == latest.c.version))
            .order_by(t.c.name)
        )
        with self.engine.connect() as conn:
            return [self._row(r) for r in conn.execute(query).all()]

    # --- writes -------------------------------------------------------------------------------------------
    def save(self, file: WorkflowFile, author: str) -> SaveResult:
        """Store ``file`` as the next version of ``file.name``, unless the latest version has the same content."""
        self._ensure()
        for attempt in range(SAVE_ATTEMPTS):
            try:
                return self._save_once(file, author)
            except IntegrityError:  # another writer took this version number: look again, after a short pause
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # jittered, so racing savers spread out
        raise ConfigurationError(f"Workflow '{file.name}' is being saved by others; try again.")

    def _save_once(self, file: WorkflowFile, author: str) -> SaveResult:
        digest = content_hash(file)
        t = self.table
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.name == file.name).order_by(t.c.version.desc()).limit(1)).first()
        if row is not None and row.content_hash == digest:
            return SaveResult(self._row(row), unchanged=True)
        return SaveResult(self._insert_next(file, author, after=row.version if row is not None else 0), False)

    def _insert_next(self, file: WorkflowFile, author: str, after: int | None = None) -> StoredVersion:
        t = self.table
        with self.engine.begin() as conn:
            if after is None:
                after = conn.execute(sa.select(sa.func.max(t.c.version)).where(t.c.name == file.name)).scalar() or 0
            if after >= MAX_VERSION:
                raise ConfigurationError(f"Workflow '{file.name}' has reached the last version number.")
            stored = StoredVersion(
                name=file.name,
                version=after + 1,
                hash=content_hash(file),
                logic_hash=logic_hash(file),
                created=datetime.now(UTC),
                author=author[:200],
                file=file,
            )
            conn.execute(
                t.insert().values(
                    name=stored.name,
                    version=stored.version,
                    content_hash=stored.hash,
                    logic_hash=stored.logic_hash,
                    file=canonical_json(file.model_dump(mode="json")).decode(),
                    created=stored.created,
                    author=stored.author,
                )
            )
        return stored

    def close(self) -> None:
        self.engine.dispose()
