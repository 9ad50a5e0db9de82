"""The ingest workflow."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from ingest.activities import IngestActivities
    from ingest.models import IngestRequest, IngestResult, request_problem

PROCESS_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)


@workflow.defn
class IngestWorkflow:
    """Validate the request, then process it."""

    @workflow.run
    async def run(self, request: IngestRequest) -> IngestResult:
        problem = request_problem(request)
        if problem:
            raise ApplicationError(
                f"invalid request: {problem}", type="InvalidRequest", non_retryable=True
            )
        output = await workflow.execute_activity_method(
            IngestActivities.process,
            request,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=PROCESS_RETRY,
        )
        return IngestResult(request.request_id, output)
