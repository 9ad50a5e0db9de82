"""A start of a workflow type that the queue does not register fails at once.

Without it, the SDK fails the *workflow task* of such a start ("not registered on this
worker"), which the server retries for as long as the workflow lives: a typo in the
``temporal`` CLI, a Schedule or another language's client would leave an execution retrying
forever. Every worker registers this dynamic workflow, which catches every type the queue
does not declare and fails the execution, non-retryably, naming the type and the known ones.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio import workflow
from temporalio.common import RawValue, VersioningBehavior
from temporalio.exceptions import ApplicationError
from workerkit._exceptions import UnknownWorkflowError

__all__ = ["UNKNOWN_WORKFLOW", "UnknownWorkflowType", "declare_known"]

UNKNOWN_WORKFLOW = "UnknownWorkflow"

# task queue -> (queue name, the types it declares); written when a worker is built.
_KNOWN: dict[str, tuple[str, list[str]]] = {}


def declare_known(task_queue: str, queue: str, types: Sequence[str]) -> None:
    """Record what ``queue`` (polling ``task_queue``) declares, for the failure's message."""
    _KNOWN[task_queue] = (queue, sorted(types))


# Unsandboxed: it only reads its own info and the table above, and raises. Whatever build
# runs it, the execution fails at once.
@workflow.defn(dynamic=True, sandboxed=False, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class UnknownWorkflowType:
    """Every type a queue does not declare: fails the execution, naming the known ones."""

    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> None:
        info = workflow.info()
        queue, known = _KNOWN.get(info.task_queue, (info.task_queue, []))
        error = UnknownWorkflowError(queue, info.workflow_type, known)
        raise ApplicationError(str(error), type=UNKNOWN_WORKFLOW, non_retryable=True)
