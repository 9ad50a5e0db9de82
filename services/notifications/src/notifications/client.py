"""Launch helpers for callers of the notifications queue."""

from __future__ import annotations

from temporalio.client import Client
from workerkit import Launched, launch

from notifications.models import Notification, NotifyResult
from notifications.queue import QUEUE
from notifications.workflows import NotifyWorkflow


async def send_notification(client: Client, notification: Notification) -> Launched[NotifyResult]:
    """Start the message's fan-out; a second call for the same message returns the first run.

    A message whose workflow failed (a channel could not be delivered) may be sent again:
    the channels already delivered are found by their idempotency keys and not resent.
    """
    return await launch(
        client,
        QUEUE,
        NotifyWorkflow.run,
        notification,
        memo={"recipient": notification.recipient, "channels": list(notification.channels)},
    )
