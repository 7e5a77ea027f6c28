"""The model-call cache: content-addressed, on disk, shared by every process on the machine.

A key is the SHA-256 of the sorted JSON request (backend, model, messages or text, parameters) with anything
that identifies the caller (``api_key``, ``base_url``, headers) left out, so a key never holds a secret and the
same request from another endpoint or account is the same entry. Values are JSON. SQLite in WAL mode lets many
Dask workers read and write at once.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

CacheMode = Literal["use", "refresh", "off"]

#: Request fields never part of a key.
EXCLUDED_KEYS = frozenset({"api_key", "base_url", "headers", "authorization", "timeout"})


def cache_key(request: Mapping[str, Any]) -> str:
    """SHA-256 hex of the request as sorted JSON, secret and endpoint fields left out."""
    clean = {k: v for k, v in request.items() if k.lower() not in EXCLUDED_KEYS}
    blob = json.dumps(clean, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CallCache:
    """A key -> JSON store in one SQLite file.

    Args:
        path: The SQLite file (created with its folder).
        mode: ``use`` reads and writes; ``refresh`` writes only (recompute, then store); ``off`` does neither.
    """

    def __init__(self, path: Path, mode: CacheMode = "use") -> None:
        self.path = Path(path)
        self.mode = mode
        self._local = threading.local()
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        if mode != "off":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS calls "
                    "(key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
                )

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def get(self, key: str) -> Any | None:
        """The stored value, or ``None`` (always ``None`` unless mode is ``use``)."""
        if self.mode != "use":
            return None
        row = self._connect().execute("SELECT value FROM calls WHERE key = ?", (key,)).fetchone()
        with self._lock:
            if row is None:
                self.misses += 1
            else:
                self.hits += 1
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        """Store a value (ignored when mode is ``off``)."""
        if self.mode == "off":
            return
        blob = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        self._connect().execute(
            "INSERT OR REPLACE INTO calls (key, value, created) VALUES (?, ?, ?)", (key, blob, time.time())
        )

    def __len__(self) -> int:
        if self.mode == "off":
            return 0
        return int(self._connect().execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def __getstate__(self) -> dict[str, Any]:  # connections do not cross processes
        return {"path": self.path, "mode": self.mode}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["mode"])  # type: ignore[misc]
