"""An in-process notifications worker (with all workerkit interceptors) on the test server.

Its activities come from the ``notify_activities`` fixture, so a test module can bind
them differently (e.g. with injected faults) while keeping the real outbox behind them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from workerkit import Database, activities_of

from notifications.activities import NotifyActivities, open_outbox
from notifications.outbox import Outbox
from notifications.queue import QUEUE
from notifications.settings import NotificationsSettings

from support import in_process_worker

# A short SMS window keeps the rate-limit test quick: 5 deliveries per 3 s.
SMS_RATE_LIMIT = 5
SMS_RATE_WINDOW_S = 3


@pytest.fixture(scope="module")
def settings() -> NotificationsSettings:
    return NotificationsSettings.from_env(
        {
            "NOTIFICATIONS_SMS_RATE_LIMIT": str(SMS_RATE_LIMIT),
            "NOTIFICATIONS_SMS_RATE_WINDOW": f"{SMS_RATE_WINDOW_S}s",
        }
    )


@pytest.fixture(scope="module")
def outbox(settings: NotificationsSettings, postgres_database: Database) -> Outbox:
    """The worker's outbox (same database and limits), for tests to read and pre-fill."""
    return open_outbox(settings, postgres_database)


@pytest.fixture(scope="module")
def notify_activities(outbox: Outbox) -> NotifyActivities:
    return NotifyActivities(outbox)


@pytest.fixture(scope="module")
async def notifications_worker(
    client: Client, notify_activities: NotifyActivities
) -> AsyncIterator[None]:
    async with in_process_worker(client, QUEUE, lambda: activities_of(notify_activities)):
        yield
