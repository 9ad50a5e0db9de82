"""The outbox and the pure parts of the activities: idempotency, rate limits, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from workerkit import Database, SettingError

from notifications.activities import retry_after_seconds
from notifications.ids import idempotency_key
from notifications.models import DeliveryRequest, DigestJob, Notification, notification_problem
from notifications.outbox import Outbox, RateLimit, RateLimited
from notifications.settings import NotificationsSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def request(message_id: str, channel: str) -> DeliveryRequest:
    return DeliveryRequest(
        idempotency_key(message_id, channel), message_id, channel, "user-1", "Hi", "Hello"
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(any_database: Database, clock: Clock) -> Outbox:
    limit = RateLimit(limit=2, window=timedelta(seconds=10))
    return Outbox(any_database, rate_limits={"sms": limit}, clock=clock)


def test_a_repeated_key_returns_the_first_delivery_and_writes_nothing(outbox: Outbox) -> None:
    first = outbox.deliver(request("m1", "email"))
    again = outbox.deliver(request("m1", "email"))
    assert not first.duplicate and again.duplicate
    assert again.delivery_id == first.delivery_id
    assert [d.idempotency_key for d in outbox.deliveries("m1")] == ["m1:email"]
    outbox.deliver(request("m1", "push"))
    assert [d.channel for d in outbox.deliveries("m1")] == ["email", "push"]


def test_rate_limit_answers_retry_after_until_a_slot_frees(outbox: Outbox, clock: Clock) -> None:
    outbox.deliver(request("a", "sms"))
    clock.now += 4
    outbox.deliver(request("b", "sms"))
    clock.now += 1
    with pytest.raises(RateLimited) as info:
        outbox.deliver(request("c", "sms"))
    # "a" leaves the 10 s window 5 s from now; nothing was written for "c".
    assert info.value.retry_after == "5"
    assert outbox.deliveries("c") == []
    # A key already delivered is answered even while the channel is over its limit.
    assert outbox.deliver(request("b", "sms")).duplicate
    # Other channels are not limited.
    outbox.deliver(request("c", "email"))
    clock.now += 4.5
    with pytest.raises(RateLimited) as info:
        outbox.deliver(request("c", "sms"))
    assert info.value.retry_after == "1"  # 0.5 s, rounded up to the header's whole seconds
    clock.now += 0.5
    assert not outbox.deliver(request("c", "sms")).duplicate


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now=now) == 120
    assert retry_after_seconds(" 7 ", now=now) == 7
    assert retry_after_seconds("Sat, 01 Mar 2025 12:00:30 GMT", now=now) == 30
    assert retry_after_seconds("Sat, 01 Mar 2025 11:00:00 GMT", now=now) == 0
    for bad in ("soon", "-5", "1.5", ""):
        with pytest.raises(ValueError, match="neither delay-seconds nor an HTTP-date"):
            retry_after_seconds(bad, now=now)


def test_digest_covers_deliveries_since_the_previous_one_once(outbox: Outbox) -> None:
    outbox.deliver(request("m1", "email"))
    outbox.deliver(request("m1", "sms"))
    first = outbox.compile_digest(DigestJob("d1", "daily"))
    assert (first.after_seq, first.deliveries, first.messages) == (0, 2, 1)
    assert first.by_channel == {"email": 1, "sms": 1}
    assert outbox.compile_digest(DigestJob("d1", "daily")) == first  # a retry
    outbox.deliver(request("m2", "push"))
    outbox.deliver(request("m3", "push"))
    second = outbox.compile_digest(DigestJob("d2", "daily"))
    assert second.after_seq == first.until_seq
    assert (second.deliveries, second.messages, second.by_channel) == (2, 2, {"push": 2})
    empty = outbox.compile_digest(DigestJob("d3", "daily"))
    assert (empty.after_seq, empty.until_seq, empty.deliveries) == (second.until_seq,) * 2 + (0,)
    assert [d.digest_id for d in outbox.digests()] == ["d1", "d2", "d3"]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"channels": []}, "no channels"),
        ({"channels": ["email", "fax"]}, "unknown channel 'fax'"),
        ({"channels": ["sms", "sms"]}, "channel 'sms' is listed twice"),
        ({"body": "  "}, "body is empty"),
        ({"recipient": ""}, "recipient is empty"),
        ({"message_id": " "}, "message_id is empty"),
        ({}, None),
    ],
)
def test_notification_problems(changes: dict[str, object], problem: str | None) -> None:
    fields: dict[str, object] = {
        "message_id": "m",
        "recipient": "user-1",
        "body": "hello",
        "channels": ["email", "sms"],
    }
    found = notification_problem(Notification(**(fields | changes)))  # type: ignore[arg-type]
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_settings_defaults_and_one_line_errors() -> None:
    settings = NotificationsSettings.from_env({})
    assert (settings.sms_rate_limit, settings.sms_rate_window) == (10, timedelta(seconds=60))
    with pytest.raises(SettingError, match="NOTIFICATIONS_SMS_RATE_LIMIT='0' is invalid"):
        NotificationsSettings.from_env({"NOTIFICATIONS_SMS_RATE_LIMIT": "0"})
    with pytest.raises(SettingError, match="NOTIFICATIONS_SMS_RATE_WINDOW='soon' is invalid"):
        NotificationsSettings.from_env({"NOTIFICATIONS_SMS_RATE_WINDOW": "soon"})
