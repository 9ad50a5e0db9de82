"""The outbox standing in for the channel providers (no network), in the database.

Every delivery is one row whose idempotency key (``<message_id>:<channel>``) is UNIQUE,
so an activity retried after a crash, a lost response or a timeout, on any worker of any
pod, finds its row and sends nothing; the delivery id is derived from the key. A channel
may be rate limited the way real providers are: more than
``limit`` deliveries within ``window`` are refused like an HTTP 429 with a
``Retry-After`` header. Digests summarise the deliveries since the previous digest.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, text
from workerkit import Database, derived_id

from notifications.models import Delivery, DeliveryRequest, Digest, DigestJob, TrackEvent


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
    """The outbox in ``db`` (its schema applied by ``fleet db migrate``)."""

    def __init__(
        self,
        db: Database,
        *,
        rate_limits: Mapping[str, RateLimit] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.rate_limits = dict(rate_limits or {})
        self._clock = clock

    def deliver(self, request: DeliveryRequest) -> Delivery:
        """Deliver once per idempotency key; a repeated key returns the first delivery.

        Raises:
            RateLimited: The channel is over its limit; nothing was written.
        """
        # The idempotency check, the rate-limit count and the insert run in one transaction
        # holding the channel's lock: one atomic step across every worker and pod.
        with self.db.transaction(lock=f"notifications:channel:{request.channel}") as db:
            row = db.execute(
                text("SELECT delivery_id FROM notifications_deliveries WHERE idempotency_key = :k"),
                {"k": request.idempotency_key},
            ).one_or_none()
            if row is not None:
                return Delivery(request.idempotency_key, request.channel, str(row[0]), True)
            now = self._clock()
            self._check_rate(db, request.channel, now)
            delivery_id = derived_id(request.channel, request.idempotency_key)
            db.execute(
                text(
                    "INSERT INTO notifications_deliveries (idempotency_key, delivery_id, "
                    "message_id, channel, recipient, subject, body, delivered_at) VALUES "
                    "(:key, :delivery_id, :message_id, :channel, :recipient, :subject, :body, :at)"
                ),
                {
                    "key": request.idempotency_key,
                    "delivery_id": delivery_id,
                    "message_id": request.message_id,
                    "channel": request.channel,
                    "recipient": request.recipient,
                    "subject": request.subject,
                    "body": request.body,
                    "at": now,
                },
            )
            return Delivery(request.idempotency_key, request.channel, delivery_id)

    def _check_rate(self, db: Connection, channel: str, now: float) -> None:
        rate = self.rate_limits.get(channel)
        if rate is None:
            return
        window = rate.window.total_seconds()
        recent = [
            float(r[0])
            for r in db.execute(
                text(
                    "SELECT delivered_at FROM notifications_deliveries "
                    "WHERE channel = :channel AND delivered_at > :since ORDER BY delivered_at"
                ),
                {"channel": channel, "since": now - window},
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
        with self.db.transaction() as db:
            inserted = db.execute(
                text(
                    "INSERT INTO notifications_events (message_id, name, detail, recorded_at) "
                    "VALUES (:m, :n, :d, :at) ON CONFLICT (message_id, name) DO NOTHING"
                ),
                {"m": event.message_id, "n": event.name, "d": detail, "at": self._clock()},
            ).rowcount
            return bool(inserted)

    def compile_digest(self, job: DigestJob) -> Digest:
        """Summarise the deliveries since the previous digest, once per ``digest_id``."""
        # The digest lock orders digests; the table lock waits for deliveries still being
        # written, so the cursor never passes a sequence number that commits later.
        with self.db.transaction(lock="notifications:digest") as db:
            self.db.lock_table(db, "notifications_deliveries")
            row = db.execute(
                text(f"SELECT {_DIGEST_COLUMNS} FROM notifications_digests WHERE digest_id = :d"),
                {"d": job.digest_id},
            ).one_or_none()
            if row is not None:
                return _digest(row)
            after = int(
                db.execute(
                    text("SELECT COALESCE(MAX(until_seq), 0) FROM notifications_digests")
                ).scalar_one()
            )
            last = db.execute(text("SELECT MAX(seq) FROM notifications_deliveries")).scalar()
            until = max(after, int(last or 0))
            window = {"after": after, "until": until}
            by_channel = {
                str(channel): int(count)
                for channel, count in db.execute(
                    text(
                        "SELECT channel, COUNT(*) FROM notifications_deliveries "
                        "WHERE seq > :after AND seq <= :until GROUP BY channel ORDER BY channel"
                    ),
                    window,
                )
            }
            messages = int(
                db.execute(
                    text(
                        "SELECT COUNT(DISTINCT message_id) FROM notifications_deliveries "
                        "WHERE seq > :after AND seq <= :until"
                    ),
                    window,
                ).scalar_one()
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
                text(
                    f"INSERT INTO notifications_digests ({_DIGEST_COLUMNS}, created_at) VALUES "
                    "(:digest_id, :title, :after, :until, :deliveries, :messages, :by_channel, "
                    ":at)"
                ),
                {
                    "digest_id": digest.digest_id,
                    "title": digest.title,
                    "after": digest.after_seq,
                    "until": digest.until_seq,
                    "deliveries": digest.deliveries,
                    "messages": digest.messages,
                    "by_channel": json.dumps(digest.by_channel),
                    "at": self._clock(),
                },
            )
            return digest

    def deliveries(self, message_id: str) -> list[Delivery]:
        """Return the message's deliveries, oldest first."""
        with self.db.transaction() as db:
            rows = db.execute(
                text(
                    "SELECT idempotency_key, channel, delivery_id FROM notifications_deliveries "
                    "WHERE message_id = :m ORDER BY seq"
                ),
                {"m": message_id},
            ).all()
        return [Delivery(str(k), str(c), str(d)) for k, c, d in rows]

    def events(self, message_id: str) -> dict[str, dict[str, list[str]]]:
        """Return the message's analytics events by name."""
        with self.db.transaction() as db:
            rows = db.execute(
                text("SELECT name, detail FROM notifications_events WHERE message_id = :m"),
                {"m": message_id},
            ).all()
        return {str(name): json.loads(detail) for name, detail in rows}

    def digests(self) -> list[Digest]:
        """Return every digest, oldest first."""
        with self.db.transaction() as db:
            rows = db.execute(
                text(
                    f"SELECT {_DIGEST_COLUMNS} FROM notifications_digests "
                    "ORDER BY until_seq, created_at"
                )
            ).all()
        return [_digest(r) for r in rows]


_DIGEST_COLUMNS = "digest_id, title, after_seq, until_seq, deliveries, messages, by_channel"


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
