"""Activities of the notifications queue, each safe to retry through the outbox's keys."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from workerkit import Database, activities_of, database_call, open_database

from notifications.models import Channel, Delivery, DeliveryRequest, Digest, DigestJob, TrackEvent
from notifications.outbox import Outbox, RateLimit, RateLimited
from notifications.settings import NotificationsSettings


def retry_after_seconds(value: str, *, now: datetime | None = None) -> float:
    """Parse an HTTP ``Retry-After`` value: delay-seconds (``"120"``) or an HTTP-date.

    Returns:
        Seconds to wait from ``now`` (default: the current time); never negative.

    Raises:
        ValueError: ``value`` is neither form (RFC 9110, section 10.2.3).
    """
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        raise ValueError(
            f"Retry-After {value!r} is neither delay-seconds nor an HTTP-date"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _rate_limited(err: RateLimited) -> ApplicationError:
    """A retryable error whose next attempt waits as long as the provider asked."""
    message = f"{err.channel} rate limited (Retry-After: {err.retry_after})"
    try:
        seconds = retry_after_seconds(err.retry_after)
    except ValueError:
        activity.logger.warning("unreadable Retry-After; the retry policy's backoff applies")
        return ApplicationError(message, type="RateLimited")
    # Whole seconds, at least one: the header's own granularity, and never a busy loop.
    delay = timedelta(seconds=max(1, math.ceil(seconds)))
    return ApplicationError(message, type="RateLimited", next_retry_delay=delay)


class NotifyActivities:
    """Deliveries, analytics and digests, bound to one outbox."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    @activity.defn
    async def deliver(self, request: DeliveryRequest) -> Delivery:
        """Deliver the message on its channel, at most once per idempotency key."""
        try:
            delivery = await database_call(self.outbox.deliver, request)
        except RateLimited as err:
            raise _rate_limited(err) from err
        if delivery.duplicate:
            activity.logger.info(
                "already delivered; nothing sent",
                extra={"idempotency_key": request.idempotency_key},
            )
        return delivery

    @activity.defn
    async def track(self, event: TrackEvent) -> bool:
        """Record an analytics event (the workflow treats a failure as non-fatal)."""
        return await database_call(self.outbox.track, event)

    @activity.defn
    async def compile_digest(self, job: DigestJob) -> Digest:
        """Summarise the deliveries since the previous digest into a digest row."""
        return await database_call(self.outbox.compile_digest, job)


def open_outbox(settings: NotificationsSettings, db: Database) -> Outbox:
    """The outbox in ``db``, with the SMS provider's rate limit from the settings."""
    sms = RateLimit(settings.sms_rate_limit, settings.sms_rate_window)
    return Outbox(db, rate_limits={Channel.SMS.value: sms})


def create_activities(settings: NotificationsSettings | None = None) -> list[Callable[..., Any]]:
    """Open the outbox in the process's database; bind the activities to it and ``settings``
    (default: read from the environment)."""
    settings = settings or NotificationsSettings.from_env()
    db = open_database(application_name="notifications")
    return activities_of(NotifyActivities(open_outbox(settings, db)))
