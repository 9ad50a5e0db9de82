"""Starting workflows idempotently: a deterministic id, and "already started" is success."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError
from workerkit._errors import LaunchError
from workerkit._registry import Queue

__all__ = ["Launched", "launch"]


@dataclass(frozen=True)
class Launched:
    """The outcome of :func:`launch`.

    Attributes:
        handle: Handle to the execution, bound to its run id.
        started: ``False`` when an execution with this id already existed (running, or
            completed) and was returned instead of starting another.
    """

    handle: WorkflowHandle[Any, Any]
    started: bool

    @property
    def workflow_id(self) -> str:
        """The workflow id."""
        return self.handle.id

    @property
    def run_id(self) -> str:
        """The run id of the returned execution."""
        run_id = self.handle.run_id or self.handle.result_run_id
        assert run_id is not None
        return run_id


async def launch(
    client: Client,
    queue: Queue,
    workflow_type: str,
    *args: Any,
    id: str | None = None,
    memo: Mapping[str, Any] | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
) -> Launched:
    """Start ``workflow_type`` on ``queue``'s task queue.

    The workflow id is ``id`` if given, else the queue's deterministic id for these
    arguments (:meth:`Queue.workflow_id`). Submitting the same thing again returns the
    existing execution instead of starting a duplicate, while it runs and, by default,
    after it completed; only a failed, cancelled or terminated one may run again.

    Raises:
        UnknownWorkflowError: The queue registers no such workflow type.
        LaunchError: The server refused the start for another reason.
    """
    run = queue.workflow_run_method(workflow_type)
    if id is None:
        id = queue.workflow_id(workflow_type, args)
    try:
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            run,
            args=list(args),
            id=id,
            task_queue=queue.task_queue,
            memo=dict(memo) if memo else None,
            id_reuse_policy=id_reuse_policy,
        )
        return Launched(handle=handle, started=True)
    except WorkflowAlreadyStartedError as err:
        run_id = err.run_id or (await client.get_workflow_handle(id).describe()).run_id
        existing: WorkflowHandle[Any, Any] = client.get_workflow_handle_for(run, id, run_id=run_id)
        return Launched(handle=existing, started=False)
    except RPCError as err:
        raise LaunchError(f"could not start {workflow_type} with id {id!r}: {err}") from err
