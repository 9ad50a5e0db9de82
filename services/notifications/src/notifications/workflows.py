"""The notifications workflows: fan one message out to its channels; compile a digest."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workerkit import failure_reason, invalid_input

    from notifications.activities import NotifyActivities
    from notifications.ids import idempotency_key
    from notifications.models import (
        Delivery,
        DeliveryRequest,
        Digest,
        DigestJob,
        DigestRequest,
        Notification,
        NotifyResult,
        TrackEvent,
        notification_problem,
    )

DELIVER_TIMEOUT = timedelta(seconds=30)
# A delivery keeps trying through outages and rate limits for up to an hour; a
# RateLimited failure sets its own next delay from the provider's Retry-After.
DELIVER_DEADLINE = timedelta(hours=1)
DELIVER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
)
# Analytics is best effort: two quick attempts, then the workflow carries on without it.
TRACK_TIMEOUT = timedelta(seconds=10)
TRACK_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=2)
DIGEST_TIMEOUT = timedelta(seconds=60)
DIGEST_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)


@workflow.defn
class NotifyWorkflow:
    """Deliver one message on each of its channels concurrently, each at most once."""

    @workflow.run
    async def run(self, notification: Notification) -> NotifyResult:
        problem = notification_problem(notification)
        if problem:
            raise invalid_input("notification", problem)
        requests = [
            DeliveryRequest(
                idempotency_key(notification.message_id, channel),
                notification.message_id,
                channel,
                notification.recipient,
                notification.subject,
                notification.body,
            )
            for channel in notification.channels
        ]
        # Every channel runs to its own end: one channel's failure neither cancels nor
        # hides the others, which have been delivered and can't be taken back.
        outcomes = await asyncio.gather(
            *(self._deliver(r) for r in requests), return_exceptions=True
        )
        delivered: list[Delivery] = []
        failed: dict[str, str] = {}
        for request, outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, Delivery):
                delivered.append(outcome)
            elif isinstance(outcome, ActivityError):
                failed[request.channel] = failure_reason(outcome)
            else:
                raise outcome  # a bug, or the workflow's cancellation: not a delivery result

        tracked = await self._track(
            TrackEvent(
                notification.message_id,
                "notification.sent",
                delivered=[d.channel for d in delivered],
                failed=sorted(failed),
            )
        )
        if failed:
            reasons = "; ".join(f"{c}: {r}" for c, r in failed.items())
            raise ApplicationError(
                f"message {notification.message_id}: delivery failed on "
                f"{', '.join(failed)} ({reasons}); delivered on "
                f"{', '.join(d.channel for d in delivered) or 'none'}",
                type="DeliveryFailed",
                non_retryable=True,
            )
        return NotifyResult(notification.message_id, delivered, tracked)

    async def _deliver(self, request: DeliveryRequest) -> Delivery:
        return await workflow.execute_activity_method(
            NotifyActivities.deliver,
            request,
            start_to_close_timeout=DELIVER_TIMEOUT,
            schedule_to_close_timeout=DELIVER_DEADLINE,
            retry_policy=DELIVER_RETRY,
            summary=request.channel,
        )

    async def _track(self, event: TrackEvent) -> bool:
        """Best effort: a failure is logged, and the notification carries on."""
        try:
            await workflow.execute_activity_method(
                NotifyActivities.track,
                event,
                start_to_close_timeout=TRACK_TIMEOUT,
                retry_policy=TRACK_RETRY,
            )
        except ActivityError as err:
            workflow.logger.warning(
                "analytics tracking failed; continuing without it",
                extra={"message_id": event.message_id, "error": failure_reason(err)},
            )
            return False
        return True


@workflow.defn
class DigestWorkflow:
    """Summarise the outbox's deliveries since the previous digest (started by a schedule)."""

    @workflow.run
    async def run(self, request: DigestRequest) -> Digest:
        # The workflow id is unique per scheduled run, so a retried activity finds the
        # digest it already wrote instead of writing an empty second one.
        return await workflow.execute_activity_method(
            NotifyActivities.compile_digest,
            DigestJob(workflow.info().workflow_id, request.title),
            start_to_close_timeout=DIGEST_TIMEOUT,
            retry_policy=DIGEST_RETRY,
        )
