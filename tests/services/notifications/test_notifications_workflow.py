"""The notifications workflow on a real Temporal server."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from notifications.client import start_request
from notifications.models import NotificationsRequest

from support import RecordHistory

pytestmark = pytest.mark.usefixtures("notifications_worker")


async def test_processes_a_request(client: Client, record_history: RecordHistory) -> None:
    request = NotificationsRequest(request_id=uuid.uuid4().hex, payload="hello")
    launched = await start_request(client, request)
    assert launched.workflow_id == f"notifications-{request.request_id}"
    result = await launched.handle.result()
    assert result.output.endswith(": hello")
    again = await start_request(client, request)
    assert again.run_id == launched.run_id
    await record_history("notifications", "processed", launched.handle)


async def test_invalid_request_fails_fast_and_non_retryable(client: Client) -> None:
    launched = await start_request(client, NotificationsRequest(request_id="r-1", payload=" "))
    with pytest.raises(WorkflowFailureError) as info:
        await launched.handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "InvalidRequest" and cause.non_retryable
    assert "payload is empty" in cause.message
