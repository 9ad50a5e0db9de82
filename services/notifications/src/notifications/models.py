"""Typed inputs and outputs of the notifications workflows and activities."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    CHAT = "chat"


@dataclass(frozen=True)
class Notification:
    """One message to send to one recipient on several channels.

    ``channels`` are names (``email``, ``sms``, ``push``, ``chat``) rather than
    :class:`Channel` values so that an unknown one fails the workflow as invalid input
    instead of failing to decode.
    """

    message_id: str
    recipient: str
    body: str
    channels: list[str]
    subject: str = ""


@dataclass(frozen=True)
class DeliveryRequest:
    """One message on one channel; ``idempotency_key`` is ``<message_id>:<channel>``."""

    idempotency_key: str
    message_id: str
    channel: str
    recipient: str
    subject: str
    body: str


@dataclass(frozen=True)
class Delivery:
    """A delivery in the outbox.

    ``duplicate`` is ``True`` when the key was already delivered (a retried attempt, or
    a notification submitted again), so nothing was sent this time.
    """

    idempotency_key: str
    channel: str
    delivery_id: str
    duplicate: bool = False


@dataclass(frozen=True)
class TrackEvent:
    """An analytics event; recorded on a best-effort basis."""

    message_id: str
    name: str
    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NotifyResult:
    message_id: str
    deliveries: list[Delivery]
    tracked: bool


@dataclass(frozen=True)
class DigestRequest:
    """Argument of the digest workflow that the schedule starts."""

    title: str = "digest"


@dataclass(frozen=True)
class DigestJob:
    """What the digest activity compiles; ``digest_id`` makes a retry find its digest."""

    digest_id: str
    title: str


@dataclass(frozen=True)
class Digest:
    """The deliveries since the previous digest: outbox sequence in (after_seq, until_seq]."""

    digest_id: str
    title: str
    after_seq: int
    until_seq: int
    deliveries: int
    messages: int
    by_channel: dict[str, int]


def notification_problem(notification: Notification) -> str | None:
    """Return why ``notification`` can never be sent, or ``None`` if it is well-formed."""
    if not notification.message_id.strip():
        return "message_id is empty"
    if not notification.recipient.strip():
        return "recipient is empty"
    if not notification.body.strip():
        return "body is empty"
    if not notification.channels:
        return "no channels"
    known = {c.value for c in Channel}
    seen: set[str] = set()
    for channel in notification.channels:
        if channel not in known:
            return f"unknown channel {channel!r}; channels: {', '.join(sorted(known))}"
        if channel in seen:
            return f"channel {channel!r} is listed twice"
        seen.add(channel)
    return None
