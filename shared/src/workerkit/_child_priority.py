"""Child workflows of a queue start with the tenant's fairness key, as the launcher's starts do.

A parent that fans out (a batch and its chunks) would otherwise start its children with no
key, the one default bucket every tenant's children share. The interceptor gives a child of
the same queue the priority its declaration reads from the child's own input, unless the
parent set one explicitly. It is a pure function of the arguments, so a replay computes the
same command.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.common import Priority
from temporalio.worker import (
    Interceptor,
    StartChildWorkflowInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from workerkit._registry import Queue

__all__ = ["ChildPriorityInterceptor", "queue_interceptors"]


def queue_interceptors(queue: Queue) -> list[Any]:
    """The interceptors a worker of ``queue`` adds to the project's: the child priority, then
    the queue's own. Its replayers take the same, so they run what its workers run."""
    return [ChildPriorityInterceptor(queue), *queue.interceptors]


class ChildPriorityInterceptor(Interceptor):
    """Sets a same-queue child workflow's priority from the queue's :class:`Fairness`."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        queue = self._queue

        class _Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(_Outbound(outbound, queue))

        return _Inbound


class _Outbound(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, queue: Queue) -> None:
        super().__init__(next)
        self._queue = queue

    async def start_child_workflow(self, input: StartChildWorkflowInput) -> Any:
        queue = self._queue
        same_queue = input.task_queue in (None, queue.task_queue)
        if (
            same_queue
            and input.priority == Priority.default
            and input.workflow in queue.workflow_types()
        ):
            input = dataclasses.replace(
                input, priority=queue.priority(input.workflow, list(input.args))
            )
        return await super().start_child_workflow(input)
