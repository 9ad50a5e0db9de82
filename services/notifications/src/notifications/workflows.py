"""The notifications workflow."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from notifications.activities import NotificationsActivities
    from notifications.models import NotificationsRequest, NotificationsResult, request_problem

PROCESS_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)


@workflow.defn
class NotificationsWorkflow:
    """Validate the request, then process it."""

    @workflow.run
    async def run(self, request: NotificationsRequest) -> NotificationsResult:
        problem = request_problem(request)
        if problem:
            raise ApplicationError(
                f"invalid request: {problem}", type="InvalidRequest", non_retryable=True
            )
        output = await workflow.execute_activity_method(
            NotificationsActivities.process,
            request,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=PROCESS_RETRY,
        )
        return NotificationsResult(request.request_id, output)
