"""Starting workflows idempotently: a deterministic id, and "already started" is success."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from temporalio import workflow as wf
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError
from temporalio.types import MethodAsyncSingleParam, ParamType, SelfType
from workerkit._exceptions import LaunchError, UnknownWorkflowError
from workerkit._registry import Queue

__all__ = ["Launched", "launch"]

_R = TypeVar("_R")
_REUSE = WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY


@dataclass(frozen=True)
class Launched(Generic[_R]):
    """The outcome of :func:`launch`; ``_R`` is the workflow's result type.

    Attributes:
        handle: Handle to the execution, bound to its run id.
        started: ``False`` when an execution with this id already existed (running, or
            completed) and was returned instead of starting another.
    """

    handle: WorkflowHandle[Any, _R]
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


@overload
async def launch(
    client: Client,
    queue: Queue,
    workflow: MethodAsyncSingleParam[SelfType, ParamType, _R],
    arg: ParamType,
    /,
    *,
    id: str | None = None,
    memo: Mapping[str, Any] | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = _REUSE,
) -> Launched[_R]: ...


@overload
async def launch(
    client: Client,
    queue: Queue,
    workflow: str,
    /,
    *args: Any,
    id: str | None = None,
    memo: Mapping[str, Any] | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = _REUSE,
) -> Launched[Any]: ...


async def launch(
    client: Client,
    queue: Queue,
    workflow: str | Callable[..., Awaitable[Any]],
    /,
    *args: Any,
    id: str | None = None,
    memo: Mapping[str, Any] | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = _REUSE,
) -> Launched[Any]:
    """Start a workflow of ``queue`` on its task queue.

    The workflow id is ``id`` if given, else the queue's deterministic id for these
    arguments (:meth:`Queue.workflow_id`), and its priority and fairness key are the
    queue's for these arguments (:meth:`Queue.priority`). Submitting the same thing again
    returns the existing execution instead of starting a duplicate, while it runs and, by default,
    after it completed; only a failed, cancelled or terminated one may run again.

    Args:
        client: A connected client.
        queue: The queue whose workers run the workflow.
        workflow: The workflow's ``@workflow.run`` method (``OrderWorkflow.run``: its
            argument and result are typed; a run method without exactly one parameter is
            started by name), or its type name (``"OrderWorkflow"``, untyped).
        *args: The workflow's arguments.
        id: The workflow id, instead of the queue's deterministic one.
        memo: The execution's memo.
        id_reuse_policy: When an id already used may start again.

    Raises:
        UnknownWorkflowError: The queue registers no such workflow type.
        LaunchError: The server refused the start for another reason.
    """
    workflow_type = workflow if isinstance(workflow, str) else _workflow_type(queue, workflow)
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
            # The tenant's fairness key, read from the input by the queue's declaration.
            priority=queue.priority(workflow_type, args),
        )
        return Launched(handle=handle, started=True)
    except WorkflowAlreadyStartedError as err:
        run_id = err.run_id or (await client.get_workflow_handle(id).describe()).run_id
        existing: WorkflowHandle[Any, Any] = client.get_workflow_handle_for(run, id, run_id=run_id)
        return Launched(handle=existing, started=False)
    except RPCError as err:
        raise LaunchError(f"could not start {workflow_type} with id {id!r}: {err}") from err


def _workflow_type(queue: Queue, run: Callable[..., Awaitable[Any]]) -> str:
    """The type name of the workflow whose ``@workflow.run`` method ``run`` is."""
    defn = wf._Definition.from_run_fn(run)
    if defn is None or defn.name is None:
        name = getattr(run, "__qualname__", repr(run))
        raise UnknownWorkflowError(queue.name, name, sorted(queue.workflow_types()))
    return defn.name
