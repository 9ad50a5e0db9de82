"""Local SQLite state for activities: one file, its schema, short serialised transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["SqliteFile"]


class SqliteFile:
    """A SQLite database file that activities share safely.

    Activities run concurrently (threads, or several worker processes on one volume), so
    each operation opens its own short connection, and ``BEGIN IMMEDIATE`` serialises
    writers: a read-check-write inside :meth:`transaction` is atomic. WAL mode lets
    readers proceed while a writer commits.
    """

    def __init__(self, path: Path, schema: str) -> None:
        """Create ``path`` (and its folder) if needed and apply ``schema`` (idempotent DDL)."""
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(schema)
        finally:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Yield a connection inside one write transaction: committed, or rolled back on error."""
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()
