"""A local SQLite store of processed items and of chunk activity attempts.

An item is recorded once per batch whatever happens: recording it again (a retried
attempt processing an item its killed predecessor already did) only counts the extra
delivery. Each attempt of the chunk activity is logged with the item it resumed from
and when it started and finished, so progress and concurrency can be read back.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ingest.models import ItemStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    batch_id TEXT NOT NULL, item_index INTEGER NOT NULL, chunk_index INTEGER NOT NULL,
    status TEXT NOT NULL, value INTEGER NOT NULL, attempt INTEGER NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 1, recorded_at REAL NOT NULL,
    PRIMARY KEY (batch_id, item_index));
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, batch_id TEXT NOT NULL,
    chunk_index INTEGER NOT NULL, attempt INTEGER NOT NULL, resumed_from INTEGER NOT NULL,
    started_at REAL NOT NULL, finished_at REAL);
CREATE INDEX IF NOT EXISTS attempts_by_batch ON attempts (batch_id, chunk_index);
"""


@dataclass(frozen=True)
class ItemRecord:
    item_index: int
    chunk_index: int
    status: ItemStatus
    value: int
    # The activity attempt that recorded the item, and how often it was processed.
    attempt: int
    deliveries: int


@dataclass(frozen=True)
class ChunkAttempt:
    chunk_index: int
    attempt: int
    resumed_from: int
    started_at: float
    finished_at: float | None


class IngestStore:
    """The store in the SQLite file at ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connection().executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread, kept open: an item is one short transaction, and
        # opening a connection for each would cost more than the write.
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db = db
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE serialises writers (of every thread and process), so "seen
        # before?" and the write are atomic.
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def record_item(
        self,
        batch_id: str,
        item_index: int,
        *,
        chunk_index: int,
        status: ItemStatus,
        value: int,
        attempt: int,
    ) -> bool:
        """Record a processed item once; ``True`` if new, ``False`` if it was recorded before."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE items SET deliveries = deliveries + 1 "
                "WHERE batch_id = ? AND item_index = ?",
                (batch_id, item_index),
            )
            if cur.rowcount:
                return False
            db.execute(
                "INSERT INTO items (batch_id, item_index, chunk_index, status, value, attempt, "
                "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (batch_id, item_index, chunk_index, str(status), value, attempt, time.time()),
            )
            return True

    def start_attempt(
        self, batch_id: str, chunk_index: int, *, attempt: int, resumed_from: int
    ) -> int:
        """Log that an attempt of a chunk started; return its id for :meth:`finish_attempt`."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO attempts (batch_id, chunk_index, attempt, resumed_from, started_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (batch_id, chunk_index, attempt, resumed_from, time.time()),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def finish_attempt(self, attempt_id: int) -> None:
        """Log that the attempt finished its chunk."""
        with self._tx() as db:
            db.execute(
                "UPDATE attempts SET finished_at = ? WHERE id = ?", (time.time(), attempt_id)
            )

    def count(self, batch_id: str) -> int:
        """How many distinct items of the batch are recorded."""
        with self._tx() as db:
            row = db.execute("SELECT COUNT(*) FROM items WHERE batch_id = ?", (batch_id,))
            return int(row.fetchone()[0])

    def items(self, batch_id: str) -> list[ItemRecord]:
        """The batch's recorded items, by index."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT item_index, chunk_index, status, value, attempt, deliveries FROM items "
                "WHERE batch_id = ? ORDER BY item_index",
                (batch_id,),
            ).fetchall()
        return [ItemRecord(r[0], r[1], ItemStatus(r[2]), r[3], r[4], r[5]) for r in rows]

    def attempts(self, batch_id: str) -> list[ChunkAttempt]:
        """Every logged attempt of the batch's chunk activities, in the order they started."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT chunk_index, attempt, resumed_from, started_at, finished_at "
                "FROM attempts WHERE batch_id = ? ORDER BY id",
                (batch_id,),
            ).fetchall()
        return [ChunkAttempt(*r) for r in rows]
