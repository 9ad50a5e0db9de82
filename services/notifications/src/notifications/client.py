"""Launch helpers for callers of the notifications queue."""

from __future__ import annotations

from temporalio.client import Client
from workerkit import Launched, launch

from notifications.models import NotificationsRequest
from notifications.queue import QUEUE


async def start_request(client: Client, request: NotificationsRequest) -> Launched:
    """Start the request's workflow; a second call for the same request returns the first run."""
    return await launch(client, QUEUE, "NotificationsWorkflow", request)
