"""Worker interceptors that log and measure every activity attempt and workflow run.

The project's plugin (``_plugin``) attaches them to every worker, after the SDK's
OpenTelemetry ``TracingInterceptor``, so a service gets them without writing a line.
Workflow-side code is replay-safe: ``workflow.logger`` drops records while replaying, and
metrics are recorded only when the worker is not replaying.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import temporalio.exceptions
from temporalio import activity, workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)
from workerkit._metrics import (
    ACTIVITY_DURATION,
    ACTIVITY_EXECUTIONS,
    WORKFLOW_DURATION,
    WORKFLOW_EXECUTIONS,
)

__all__ = ["ObservabilityInterceptor"]


def _error_fields(err: BaseException) -> dict[str, Any]:
    fields: dict[str, Any] = {"error": str(err), "error_type": type(err).__name__}
    if isinstance(err, temporalio.exceptions.ApplicationError):
        fields["error_type"] = err.type or fields["error_type"]
        fields["non_retryable"] = err.non_retryable
    return fields


def _activity_outcome(err: BaseException | None) -> str | None:
    if err is None:
        return "completed"
    if isinstance(err, activity._CompleteAsyncError):
        return None  # completes later, from outside this worker
    if isinstance(err, asyncio.CancelledError | temporalio.exceptions.CancelledError):
        return "cancelled"
    return "failed"


def _workflow_outcome(err: BaseException | None) -> str | None:
    if err is None:
        return "completed"
    if isinstance(err, workflow.ContinueAsNewError):
        return "continued_as_new"
    if isinstance(err, asyncio.CancelledError | temporalio.exceptions.CancelledError):
        return "cancelled"
    if isinstance(err, temporalio.exceptions.FailureError):
        return "failed"
    return None  # any other exception fails the workflow task, which Temporal retries


class _ActivityInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        start = time.perf_counter()
        error: BaseException | None = None
        activity.logger.debug("activity started")
        try:
            return await super().execute_activity(input)
        except BaseException as err:
            error = err
            raise
        finally:
            outcome = _activity_outcome(error)
            if outcome is not None:
                elapsed = time.perf_counter() - start
                labels = (info.task_queue, info.activity_type, outcome)
                ACTIVITY_EXECUTIONS.labels(*labels).inc()
                ACTIVITY_DURATION.labels(*labels).observe(elapsed)
                extra = {"outcome": outcome, "duration_ms": round(elapsed * 1000, 1)}
                if error is None:
                    activity.logger.info("activity completed", extra=extra)
                else:
                    activity.logger.warning(
                        f"activity {outcome}", extra=extra | _error_fields(error)
                    )


class _WorkflowInbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        workflow.logger.info("workflow started")
        try:
            result = await super().execute_workflow(input)
        except GeneratorExit:
            # The coroutine of a run still cached when its worker stops is closed by the
            # garbage collector, outside any workflow: nothing finished, nothing to record.
            raise
        except BaseException as err:
            self._record(err)
            raise
        self._record(None)
        return result

    @staticmethod
    def _record(error: BaseException | None) -> None:
        info = workflow.info()
        outcome = _workflow_outcome(error)
        if outcome is None:
            assert error is not None
            workflow.logger.error(
                "workflow task failed; Temporal will retry it", extra=_error_fields(error)
            )
            return
        elapsed: timedelta = workflow.now() - info.start_time
        extra = {"outcome": outcome, "duration_ms": round(elapsed.total_seconds() * 1000, 1)}
        if error is None or outcome == "continued_as_new":
            workflow.logger.info(f"workflow {outcome}", extra=extra)
        else:
            workflow.logger.warning(f"workflow {outcome}", extra=extra | _error_fields(error))
        if not workflow.unsafe.is_replaying():
            labels = (info.task_queue, info.workflow_type, outcome)
            WORKFLOW_EXECUTIONS.labels(*labels).inc()
            WORKFLOW_DURATION.labels(*labels).observe(max(elapsed.total_seconds(), 0.0))


class ObservabilityInterceptor(Interceptor):
    """Logs and counts every activity attempt and workflow run, with durations."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityInbound(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _WorkflowInbound
