"""A local SQLite outbox standing in for the channel providers: no network.

Every delivery is one row whose idempotency key (``<message_id>:<channel>``) is UNIQUE,
so an activity retried after a crash, a lost response or a timeout finds its row and
sends nothing. A channel may be rate limited the way real providers are: more than
``limit`` deliveries within ``window`` are refused like an HTTP 429 with a
``Retry-After`` header. Digests summarise the deliveries since the previous digest.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from workerkit import SqliteFile

from notifications.models import Delivery, DeliveryRequest, Digest, DigestJob, TrackEvent

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    delivery_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    delivered_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS deliveries_by_channel ON deliveries (channel, delivered_at);
CREATE INDEX IF NOT EXISTS deliveries_by_message ON deliveries (message_id);
CREATE TABLE IF NOT EXISTS events (
    message_id TEXT NOT NULL, name TEXT NOT NULL, detail TEXT NOT NULL,
    recorded_at REAL NOT NULL, PRIMARY KEY (message_id, name));
CREATE TABLE IF NOT EXISTS digests (
    digest_id TEXT PRIMARY KEY, title TEXT NOT NULL, after_seq INTEGER NOT NULL,
    until_seq INTEGER NOT NULL, deliveries INTEGER NOT NULL, messages INTEGER NOT NULL,
    by_channel TEXT NOT NULL, created_at REAL NOT NULL);
"""


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` deliveries on a channel within any ``window``."""

    limit: int
    window: timedelta


class RateLimited(Exception):
    """The provider refused the delivery for now (HTTP 429).

    Attributes:
        channel: The rate-limited channel.
        retry_after: The ``Retry-After`` value the provider answered: delay-seconds,
            as a string, the way it arrives in an HTTP header.
    """

    def __init__(self, channel: str, retry_after: str) -> None:
        self.channel = channel
        self.retry_after = retry_after
        super().__init__(f"{channel} rate limited; Retry-After: {retry_after}")


class Outbox:
    """The outbox in the SQLite file at ``path`` (created on first use)."""

    def __init__(
        self,
        path: Path,
        *,
        rate_limits: Mapping[str, RateLimit] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.rate_limits = dict(rate_limits or {})
        self._clock = clock
        # The idempotency check, the rate-limit count and the insert run in one
        # serialised transaction: one atomic step even across worker processes.
        self._db = SqliteFile(path, _SCHEMA)

    def deliver(self, request: DeliveryRequest) -> Delivery:
        """Deliver once per idempotency key; a repeated key returns the first delivery.

        Raises:
            RateLimited: The channel is over its limit; nothing was written.
        """
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT delivery_id FROM deliveries WHERE idempotency_key = ?",
                (request.idempotency_key,),
            ).fetchone()
            if row is not None:
                return Delivery(request.idempotency_key, request.channel, str(row[0]), True)
            now = self._clock()
            self._check_rate(db, request.channel, now)
            delivery_id = f"{request.channel}-{uuid.uuid4().hex[:12]}"
            db.execute(
                "INSERT INTO deliveries (idempotency_key, delivery_id, message_id, channel, "
                "recipient, subject, body, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request.idempotency_key,
                    delivery_id,
                    request.message_id,
                    request.channel,
                    request.recipient,
                    request.subject,
                    request.body,
                    now,
                ),
            )
            return Delivery(request.idempotency_key, request.channel, delivery_id)

    def _check_rate(self, db: sqlite3.Connection, channel: str, now: float) -> None:
        rate = self.rate_limits.get(channel)
        if rate is None:
            return
        window = rate.window.total_seconds()
        recent = [
            float(r[0])
            for r in db.execute(
                "SELECT delivered_at FROM deliveries WHERE channel = ? AND delivered_at > ? "
                "ORDER BY delivered_at",
                (channel, now - window),
            )
        ]
        if len(recent) < rate.limit:
            return
        # A slot frees when the delivery that keeps the count at the limit leaves the window.
        frees_at = recent[len(recent) - rate.limit] + window
        raise RateLimited(channel, str(max(1, math.ceil(frees_at - now))))

    def track(self, event: TrackEvent) -> bool:
        """Record an analytics event once per message and name; ``True`` if new."""
        detail = json.dumps({"delivered": event.delivered, "failed": event.failed})
        with self._db.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?)",
                (event.message_id, event.name, detail, self._clock()),
            )
            return bool(cur.rowcount)

    def compile_digest(self, job: DigestJob) -> Digest:
        """Summarise the deliveries since the previous digest, once per ``digest_id``."""
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT digest_id, title, after_seq, until_seq, deliveries, messages, "
                "by_channel FROM digests WHERE digest_id = ?",
                (job.digest_id,),
            ).fetchone()
            if row is not None:
                return _digest(row)
            after = int(db.execute("SELECT COALESCE(MAX(until_seq), 0) FROM digests").fetchone()[0])
            last = db.execute("SELECT MAX(seq) FROM deliveries").fetchone()[0]
            until = max(after, int(last or 0))
            by_channel = {
                str(channel): int(count)
                for channel, count in db.execute(
                    "SELECT channel, COUNT(*) FROM deliveries WHERE seq > ? AND seq <= ? "
                    "GROUP BY channel ORDER BY channel",
                    (after, until),
                )
            }
            messages = int(
                db.execute(
                    "SELECT COUNT(DISTINCT message_id) FROM deliveries WHERE seq > ? AND seq <= ?",
                    (after, until),
                ).fetchone()[0]
            )
            digest = Digest(
                job.digest_id,
                job.title,
                after,
                until,
                sum(by_channel.values()),
                messages,
                by_channel,
            )
            db.execute(
                "INSERT INTO digests VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    digest.digest_id,
                    digest.title,
                    digest.after_seq,
                    digest.until_seq,
                    digest.deliveries,
                    digest.messages,
                    json.dumps(digest.by_channel),
                    self._clock(),
                ),
            )
            return digest

    def deliveries(self, message_id: str) -> list[Delivery]:
        """Return the message's deliveries, oldest first."""
        with self._db.transaction() as db:
            rows = db.execute(
                "SELECT idempotency_key, channel, delivery_id FROM deliveries "
                "WHERE message_id = ? ORDER BY seq",
                (message_id,),
            ).fetchall()
        return [Delivery(str(k), str(c), str(d)) for k, c, d in rows]

    def events(self, message_id: str) -> dict[str, dict[str, list[str]]]:
        """Return the message's analytics events by name."""
        with self._db.transaction() as db:
            rows = db.execute(
                "SELECT name, detail FROM events WHERE message_id = ?", (message_id,)
            ).fetchall()
        return {str(name): json.loads(detail) for name, detail in rows}

    def digests(self) -> list[Digest]:
        """Return every digest, oldest first."""
        with self._db.transaction() as db:
            rows = db.execute(
                "SELECT digest_id, title, after_seq, until_seq, deliveries, messages, "
                "by_channel FROM digests ORDER BY until_seq, created_at"
            ).fetchall()
        return [_digest(r) for r in rows]


def _digest(row: Any) -> Digest:
    digest_id, title, after, until, deliveries, messages, by_channel = row
    return Digest(
        str(digest_id),
        str(title),
        int(after),
        int(until),
        int(deliveries),
        int(messages),
        {str(k): int(v) for k, v in json.loads(by_channel).items()},
    )
