"""The notifications queue declaration: registered through the ``workerkit.queues`` entry point."""

from datetime import timedelta

from temporalio.common import VersioningBehavior
from workerkit import Queue, Schedule, Tuning

from notifications.activities import create_activities
from notifications.ids import notify_workflow_id
from notifications.models import DigestRequest
from notifications.workflows import DigestWorkflow, NotifyWorkflow

# Daily at 08:00 UTC, server-managed: `fleet schedules sync` creates or updates it.
DIGEST_SCHEDULE = Schedule(
    id="digest",
    workflow=DigestWorkflow,
    args=[DigestRequest(title="daily digest")],
    every=timedelta(days=1),
    offset=timedelta(hours=8),
    execution_timeout=timedelta(hours=1),
    note="daily digest of the outbox's deliveries, 08:00 UTC",
)

QUEUE = Queue(
    name="notifications",
    version=1,
    description="Fan-out to channels via an idempotent outbox; rate-limited SMS; daily digest.",
    workflows=[NotifyWorkflow, DigestWorkflow],
    activities=create_activities,
    tuning=Tuning(),
    workflow_ids={NotifyWorkflow: lambda notification: notify_workflow_id(notification.message_id)},
    schedules=[DIGEST_SCHEDULE],
    # A delivery or a digest takes seconds to minutes: it finishes on the build that started it.
    versioning=VersioningBehavior.PINNED,
    migrations="notifications.migrations",
    histories="notifications.histories",
    # Deliveries take seconds (30s start-to-close, a 10s tracking call; the daily digest at most
    # a minute): a stopped worker drains within its shutdown timeout, so it may scale to zero.
    shape="short",
)
