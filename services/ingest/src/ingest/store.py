"""The ingest store of processed items and of chunk activity attempts, in the database.

An item is recorded once per batch whatever happens: recording it again (a retried
attempt processing an item its killed predecessor already did, on any pod) only counts
the extra delivery. Each attempt of the chunk activity is logged with the item it resumed
from and when it started and finished, so progress and concurrency can be read back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import text
from workerkit import Database

from ingest.models import ItemStatus


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
    """The store in ``db`` (its schema applied by ``fleet db migrate``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

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
        key = {"b": batch_id, "i": item_index}
        with self.db.transaction() as db:
            # The key decides: a concurrent insert of the same item waits for the first.
            inserted = db.execute(
                text(
                    "INSERT INTO ingest_items (batch_id, item_index, chunk_index, status, value, "
                    "attempt, recorded_at) VALUES (:b, :i, :c, :s, :v, :a, :at) "
                    "ON CONFLICT (batch_id, item_index) DO NOTHING"
                ),
                {
                    **key,
                    "c": chunk_index,
                    "s": str(status),
                    "v": value,
                    "a": attempt,
                    "at": time.time(),
                },
            ).rowcount
            if inserted:
                return True
            db.execute(
                text(
                    "UPDATE ingest_items SET deliveries = deliveries + 1 "
                    "WHERE batch_id = :b AND item_index = :i"
                ),
                key,
            )
            return False

    def start_attempt(
        self, batch_id: str, chunk_index: int, *, attempt: int, resumed_from: int
    ) -> int:
        """Log that an attempt of a chunk started; return its id for :meth:`finish_attempt`."""
        with self.db.transaction() as db:
            return int(
                db.execute(
                    text(
                        "INSERT INTO ingest_attempts (batch_id, chunk_index, attempt, "
                        "resumed_from, started_at) VALUES (:b, :c, :a, :r, :at) RETURNING id"
                    ),
                    {
                        "b": batch_id,
                        "c": chunk_index,
                        "a": attempt,
                        "r": resumed_from,
                        "at": time.time(),
                    },
                ).scalar_one()
            )

    def finish_attempt(self, attempt_id: int) -> None:
        """Log that the attempt finished its chunk."""
        with self.db.transaction() as db:
            db.execute(
                text("UPDATE ingest_attempts SET finished_at = :at WHERE id = :id"),
                {"at": time.time(), "id": attempt_id},
            )

    def count(self, batch_id: str) -> int:
        """How many distinct items of the batch are recorded."""
        with self.db.transaction() as db:
            return int(
                db.execute(
                    text("SELECT COUNT(*) FROM ingest_items WHERE batch_id = :b"), {"b": batch_id}
                ).scalar_one()
            )

    def items(self, batch_id: str) -> list[ItemRecord]:
        """The batch's recorded items, by index."""
        with self.db.transaction() as db:
            rows = db.execute(
                text(
                    "SELECT item_index, chunk_index, status, value, attempt, deliveries "
                    "FROM ingest_items WHERE batch_id = :b ORDER BY item_index"
                ),
                {"b": batch_id},
            ).all()
        return [ItemRecord(r[0], r[1], ItemStatus(r[2]), r[3], r[4], r[5]) for r in rows]

    def attempts(self, batch_id: str) -> list[ChunkAttempt]:
        """Every logged attempt of the batch's chunk activities, in the order they started."""
        with self.db.transaction() as db:
            rows = db.execute(
                text(
                    "SELECT chunk_index, attempt, resumed_from, started_at, finished_at "
                    "FROM ingest_attempts WHERE batch_id = :b ORDER BY id"
                ),
                {"b": batch_id},
            ).all()
        return [ChunkAttempt(*r) for r in rows]
