"""The agent workflow."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from agent.activities import AgentActivities
    from agent.models import AgentRequest, AgentResult, request_problem

PROCESS_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)


@workflow.defn
class AgentWorkflow:
    """Validate the request, then process it."""

    @workflow.run
    async def run(self, request: AgentRequest) -> AgentResult:
        problem = request_problem(request)
        if problem:
            raise ApplicationError(
                f"invalid request: {problem}", type="InvalidRequest", non_retryable=True
            )
        output = await workflow.execute_activity_method(
            AgentActivities.process,
            request,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=PROCESS_RETRY,
        )
        return AgentResult(request.request_id, output)
