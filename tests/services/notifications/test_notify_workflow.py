"""The fan-out on a real Temporal server: idempotent retries, Retry-After, best effort, bad input.

The worker's activities are the real ones over the real outbox, with faults injected
per idempotency key or message id where a test asks for them.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from notifications.activities import NotifyActivities
from notifications.client import send_notification
from notifications.models import Delivery, DeliveryRequest, Notification, TrackEvent
from notifications.outbox import Outbox
from notifications.workflows import DELIVER_RETRY, TRACK_RETRY

from support import RecordHistory

pytestmark = pytest.mark.usefixtures("notifications_worker")

ALL_CHANNELS = ["email", "sms", "push", "chat"]


@dataclass
class Faults:
    """Faults the activities inject; the tests add keys to them."""

    # Idempotency keys whose first attempt fails *after* the outbox write (a lost answer).
    lost_answer: set[str] = field(default_factory=set)
    # Idempotency keys that always fail, non-retryable (the recipient is unreachable).
    unreachable: set[str] = field(default_factory=set)
    # Message ids whose analytics tracking fails on every attempt.
    broken_tracking: set[str] = field(default_factory=set)
    attempts: Counter[str] = field(default_factory=Counter)


class FaultyActivities(NotifyActivities):
    def __init__(self, outbox: Outbox, faults: Faults) -> None:
        super().__init__(outbox)
        self.faults = faults

    @activity.defn
    async def deliver(self, request: DeliveryRequest) -> Delivery:
        key = request.idempotency_key
        self.faults.attempts[f"deliver:{key}"] += 1
        if key in self.faults.unreachable:
            raise ApplicationError("recipient unreachable", type="Unreachable", non_retryable=True)
        delivery = await super().deliver(request)
        if key in self.faults.lost_answer and activity.info().attempt == 1:
            raise ApplicationError("connection reset before the answer", type="ConnectionReset")
        return delivery

    @activity.defn
    async def track(self, event: TrackEvent) -> bool:
        self.faults.attempts[f"track:{event.message_id}"] += 1
        if event.message_id in self.faults.broken_tracking:
            raise ApplicationError("analytics collector unavailable", type="Unavailable")
        return await super().track(event)


@pytest.fixture(scope="module")
def faults() -> Faults:
    return Faults()


@pytest.fixture(scope="module")
def notify_activities(outbox: Outbox, faults: Faults) -> NotifyActivities:
    return FaultyActivities(outbox, faults)


@pytest.fixture
def make_notification() -> Callable[..., Notification]:
    def make(**overrides: Any) -> Notification:
        fields: dict[str, Any] = {
            "message_id": f"msg-{uuid.uuid4().hex[:10]}",
            "recipient": "user-42",
            "subject": "Your order shipped",
            "body": "Order A-1001 is on its way.",
            "channels": list(ALL_CHANNELS),
        }
        return Notification(**(fields | overrides))

    return make


MakeNotification = Callable[..., Notification]


async def failure_of(handle: WorkflowHandle[Any, Any]) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def history_of(handle: WorkflowHandle[Any, Any]) -> list[HistoryEvent]:
    return [e async for e in handle.fetch_history_events()]


def deliveries_in(history: list[HistoryEvent]) -> dict[str, tuple[HistoryEvent, HistoryEvent]]:
    """Map each channel to its deliver activity's (scheduled, started) events."""
    started = {
        e.activity_task_started_event_attributes.scheduled_event_id: e
        for e in history
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    }
    found = {}
    for event in history:
        attrs = event.activity_task_scheduled_event_attributes
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED and (
            attrs.activity_type.name == "deliver"
        ):
            channel = json.loads(attrs.input.payloads[0].data)["channel"]
            found[channel] = (event, started[event.event_id])
    return found


async def test_fans_out_one_outbox_row_per_channel_concurrently(
    client: Client,
    outbox: Outbox,
    make_notification: MakeNotification,
    record_history: RecordHistory,
) -> None:
    note = make_notification()
    launched = await send_notification(client, note)
    assert launched.started and launched.workflow_id == f"notify-{note.message_id}"
    result = await launched.handle.result()

    rows = outbox.deliveries(note.message_id)
    assert sorted(r.idempotency_key for r in rows) == sorted(
        f"{note.message_id}:{c}" for c in ALL_CHANNELS
    )
    assert sorted(d.delivery_id for d in result.deliveries) == sorted(r.delivery_id for r in rows)
    assert not any(d.duplicate for d in result.deliveries) and result.tracked
    assert outbox.events(note.message_id)["notification.sent"]["delivered"] == ALL_CHANNELS
    # All four were scheduled by one workflow task: they ran concurrently, not in turn.
    scheduled = [s for s, _ in deliveries_in(await history_of(launched.handle)).values()]
    assert len(scheduled) == 4
    assert (
        len(
            {
                s.activity_task_scheduled_event_attributes.workflow_task_completed_event_id
                for s in scheduled
            }
        )
        == 1
    )

    again = await send_notification(client, note)
    assert not again.started and again.run_id == launched.run_id
    assert len(outbox.deliveries(note.message_id)) == 4
    await record_history("notifications", "fan_out", launched.handle)


async def test_a_retry_after_a_lost_answer_does_not_deliver_twice(
    client: Client,
    outbox: Outbox,
    faults: Faults,
    make_notification: MakeNotification,
    record_history: RecordHistory,
) -> None:
    note = make_notification(channels=["email", "chat"])
    key = f"{note.message_id}:email"
    faults.lost_answer.add(key)
    launched = await send_notification(client, note)
    result = await launched.handle.result()

    assert faults.attempts[f"deliver:{key}"] == 2
    email = next(d for d in result.deliveries if d.channel == "email")
    assert email.duplicate, "the retry must find the first attempt's row"
    assert [r.idempotency_key for r in outbox.deliveries(note.message_id)].count(key) == 1
    assert email.delivery_id == next(
        r.delivery_id for r in outbox.deliveries(note.message_id) if r.channel == "email"
    )
    _, started = deliveries_in(await history_of(launched.handle))["email"]
    attrs = started.activity_task_started_event_attributes
    assert attrs.attempt == 2
    assert attrs.last_failure.application_failure_info.type == "ConnectionReset"
    await record_history("notifications", "lost_answer_retried", launched.handle)


async def test_rate_limited_sms_retries_after_the_retry_after_delay(
    client: Client,
    outbox: Outbox,
    make_notification: MakeNotification,
    record_history: RecordHistory,
) -> None:
    # Fill the SMS window (a burst from another sender: written past the limit check).
    assert outbox.rate_limits["sms"].limit == 5
    burst = Outbox(outbox.db)
    for _ in range(5):
        burst.deliver(
            DeliveryRequest(f"burst-{uuid.uuid4().hex}:sms", "burst", "sms", "u", "", "b")
        )
    note = make_notification(channels=["sms"])
    launched = await send_notification(client, note)
    result = await launched.handle.result()
    assert [d.channel for d in result.deliveries] == ["sms"]

    scheduled, started = deliveries_in(await history_of(launched.handle))["sms"]
    attrs = started.activity_task_started_event_attributes
    assert attrs.attempt == 2, "the first attempt must have been refused"
    failure = attrs.last_failure
    assert failure.application_failure_info.type == "RateLimited"
    match = re.search(r"Retry-After: (\d+)", failure.message)
    assert match, failure.message
    retry_after = int(match.group(1))
    delay = failure.application_failure_info.next_retry_delay.ToTimedelta().total_seconds()
    # The provider's Retry-After (3 s window, filled just now) set the delay, not the
    # retry policy's 1 s backoff; and the second attempt waited at least that long.
    assert delay == retry_after >= 2 > DELIVER_RETRY.initial_interval.total_seconds()
    waited = started.event_time.ToDatetime() - scheduled.event_time.ToDatetime()
    assert waited.total_seconds() >= delay
    assert len(outbox.deliveries(note.message_id)) == 1
    await record_history("notifications", "rate_limited", launched.handle)


async def test_failed_tracking_is_logged_and_the_notification_completes(
    client: Client,
    outbox: Outbox,
    faults: Faults,
    make_notification: MakeNotification,
    record_history: RecordHistory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="temporalio.workflow")
    note = make_notification(channels=["email", "push"])
    faults.broken_tracking.add(note.message_id)
    launched = await send_notification(client, note)
    result = await launched.handle.result()

    assert not result.tracked
    assert sorted(d.channel for d in result.deliveries) == ["email", "push"]
    assert faults.attempts[f"track:{note.message_id}"] == TRACK_RETRY.maximum_attempts == 2
    assert outbox.events(note.message_id) == {}
    warnings = [
        r
        for r in caplog.records
        if r.name == "temporalio.workflow" and getattr(r, "message_id", None) == note.message_id
    ]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "tracking failed; continuing" in warnings[0].getMessage()
    assert "analytics collector unavailable" in warnings[0].__dict__["error"]
    await record_history("notifications", "tracking_failed", launched.handle)


async def test_an_undeliverable_channel_fails_the_message_and_a_resend_fills_the_gap(
    client: Client,
    outbox: Outbox,
    faults: Faults,
    make_notification: MakeNotification,
    record_history: RecordHistory,
) -> None:
    note = make_notification()
    push = f"{note.message_id}:push"
    faults.unreachable.add(push)
    launched = await send_notification(client, note)
    error = await failure_of(launched.handle)
    assert error.type == "DeliveryFailed" and error.non_retryable
    assert "delivery failed on push (push: Unreachable: recipient unreachable)" in error.message
    assert "delivered on email, sms, chat" in error.message
    assert faults.attempts[f"deliver:{push}"] == 1, "a non-retryable refusal is not retried"
    assert sorted(r.channel for r in outbox.deliveries(note.message_id)) == [
        "chat",
        "email",
        "sms",
    ]
    assert outbox.events(note.message_id)["notification.sent"]["failed"] == ["push"]
    await record_history("notifications", "delivery_failed", launched.handle)

    # Sending the failed message again delivers only what is missing.
    faults.unreachable.discard(push)
    again = await send_notification(client, note)
    assert again.started and again.run_id != launched.run_id
    result = await again.handle.result()
    assert {d.channel: d.duplicate for d in result.deliveries} == {
        "email": True,
        "sms": True,
        "push": False,
        "chat": True,
    }
    assert len(outbox.deliveries(note.message_id)) == 4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"channels": []}, "no channels"),
        ({"channels": ["email", "fax"]}, "unknown channel 'fax'"),
        ({"body": " "}, "body is empty"),
    ],
)
async def test_invalid_notification_fails_fast_and_non_retryable(
    client: Client,
    outbox: Outbox,
    make_notification: MakeNotification,
    overrides: dict[str, Any],
    message: str,
    record_history: RecordHistory,
) -> None:
    note = make_notification(**overrides)
    started = time.monotonic()
    launched = await send_notification(client, note)
    error = await failure_of(launched.handle)
    assert time.monotonic() - started < 10
    assert error.type == "InvalidNotification" and error.non_retryable
    assert message in error.message
    history = await history_of(launched.handle)
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in [e.event_type for e in history]
    # The first workflow task failed the workflow: no retry of the task either.
    assert [e.event_type for e in history].count(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED) == 1
    assert outbox.deliveries(note.message_id) == []
    if not note.channels:
        await record_history("notifications", "invalid_notification", launched.handle)
