"""Calls with the wrong number of arguments, refused before they reach a workflow's code.

The strict converter (``_strict``) checks each argument against its declared type; the
*count* it cannot check (the SDK drops the type hints when the count differs, and converts
nothing when there is no argument), and the SDK calls the code with whatever arrived. A start
from the ``temporal`` CLI with no ``--input``, or another SDK's client passing one argument
too many, then raises ``TypeError`` inside the workflow task (in ``@workflow.init``, before
any interceptor), which fails, and Temporal retries it forever. So, for every workflow of
every queue:

- a start with too few or too many arguments fails the workflow at once, non-retryable
  (``InvalidInput``), naming the run method's parameters: :class:`ArityRunner` checks the
  first activation's arguments before the SDK creates the workflow object;
- a signal is dropped with one warning naming it and its parameters (it is fire-and-forget:
  there is no caller to answer), counted in ``workerkit_signals_dropped_total``, and the
  workflow goes on;
- a query or an update fails to its caller with the same message (an update with a
  validator is rejected, one without fails), and the workflow goes on.

The decision depends only on the history's payloads, so a replay makes it again.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from temporalio import workflow
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_commands import (
    FailWorkflowExecution,
    QueryResult,
    WorkflowCommand,
)
from temporalio.bridge.proto.workflow_completion import Success, WorkflowActivationCompletion
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowInterceptorClassInput,
)
from workerkit._metrics import SIGNALS_DROPPED
from workerkit._runners import WrappedInstance, WrappingRunner
from workerkit._strict import INVALID_INPUT

__all__ = ["ArityInterceptor", "ArityRunner", "arity_problem"]

_log = logging.getLogger("workerkit.arity")
_UNBOUND = object()  # stands for the instance when the run method is given unbound


def _parameter(p: inspect.Parameter) -> str:
    if p.kind is p.VAR_POSITIONAL:
        return f"*{p.name}"
    return p.name if p.default is p.empty else f"{p.name}=…"


def arity_problem(
    fn: Callable[..., Any], args: Sequence[Any], *, unbound: bool = False
) -> str | None:
    """What is wrong with calling ``fn`` with ``args`` positionally, or ``None`` if it fits.

    Args:
        fn: The workflow's run method or a handler (bound, unless ``unbound``).
        args: The converted arguments.
        unbound: ``fn`` takes the instance first (a run method, as the SDK holds it).
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a callable without a signature: nothing to check
        return None
    try:
        signature.bind(*((_UNBOUND,) if unbound else ()), *args)
    except TypeError:
        params = list(signature.parameters.values())[1 if unbound else 0 :]
        required = sum(1 for p in params if p.default is p.empty and p.kind is not p.VAR_POSITIONAL)
        takes = ", ".join(_parameter(p) for p in params) or "no arguments"
        return f"takes ({takes}): {required} required, got {len(args)}"
    return None


def _handler(kind: str, name: str) -> Callable[..., Any] | None:
    named, dynamic = {
        "signal": (workflow.get_signal_handler, workflow.get_dynamic_signal_handler),
        "query": (workflow.get_query_handler, workflow.get_dynamic_query_handler),
        "update": (workflow.get_update_handler, workflow.get_dynamic_update_handler),
    }[kind]
    return named(name) or dynamic()  # the dynamic handler takes what no named one does


class _Inbound(WorkflowInboundInterceptor):
    # A start's count is checked by ArityRunner, before the workflow object exists.
    async def handle_signal(self, input: HandleSignalInput) -> None:
        handler = _handler("signal", input.signal)
        problem = arity_problem(handler, input.args) if handler is not None else None
        if problem is None:
            return await super().handle_signal(input)
        if not workflow.unsafe.is_replaying():
            info = workflow.info()
            SIGNALS_DROPPED.labels(info.task_queue, input.signal).inc()
            workflow.logger.warning(
                "signal dropped: wrong number of arguments",
                extra={"signal": input.signal, "reason": f"{input.signal} {problem}"},
            )
        return None

    async def handle_query(self, input: HandleQueryInput) -> Any:
        self._refuse("query", input.query, input.args)
        return await super().handle_query(input)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        self._refuse("update", input.update, input.args)  # rejected: not in the history
        super().handle_update_validator(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        self._refuse("update", input.update, input.args)
        return await super().handle_update_handler(input)

    @staticmethod
    def _refuse(kind: str, name: str, args: Sequence[Any]) -> None:
        handler = _handler(kind, name)
        problem = arity_problem(handler, args) if handler is not None else None
        if problem is not None:
            raise ApplicationError(
                f"{kind} {name} {problem} argument(s)", type=INVALID_INPUT, non_retryable=True
            )


class ArityInterceptor(Interceptor):
    """Refuses workflow starts, signals, queries and updates with the wrong argument count."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _Inbound


class ArityRunner(WrappingRunner):
    """Fails a workflow started with the wrong number of arguments, before its code runs.

    Wraps the runner workflows run in (sandboxed or not): the first activation of a run
    carries its start arguments, which are counted against the run method's parameters
    (a ``@workflow.init`` takes the same); on a mismatch the run fails with a non-retryable
    ``InvalidInput`` failure instead of reaching the SDK, which would call ``__init__`` with
    them and fail the workflow task for good.
    """

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        """Wrap the wrapped runner's instance."""
        return _CheckedStart(super().create_instance(det), det.defn, det.info)


class _CheckedStart(WrappedInstance):
    def __init__(self, inner: WorkflowInstance, defn: Any, info: workflow.Info) -> None:
        super().__init__(inner)
        self._defn = defn
        self._info = info
        self._refused: str | None = None  # the run's failure, once refused

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        if self._refused is None and self._defn.name is not None:  # the dynamic one takes all
            for job in act.jobs:
                if job.HasField("initialize_workflow"):
                    count = len(job.initialize_workflow.arguments)
                    problem = arity_problem(self._defn.run_fn, [None] * count, unbound=True)
                    if problem is not None:
                        self._refused = f"{self._defn.name} {problem} argument(s)"
                        if not act.is_replaying:
                            # Refused before any interceptor runs: the worker's log says so
                            # itself, as it says of any workflow that failed.
                            _log.warning(
                                "workflow failed",
                                extra={
                                    "outcome": "failed",
                                    "error": self._refused,
                                    "error_type": INVALID_INPUT,
                                    "non_retryable": True,
                                    "workflow_id": self._info.workflow_id,
                                    "workflow_type": self._info.workflow_type,
                                    "task_queue": self._info.task_queue,
                                },
                            )
                        return self._fail(act)
        if self._refused is not None:  # what follows a refused start: evictions, queries
            return self._after_refusal(act)
        return super().activate(act)

    def _failure(self) -> Failure:
        info = ApplicationFailureInfo(type=INVALID_INPUT, non_retryable=True)
        return Failure(message=self._refused or "", application_failure_info=info)

    def _fail(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        command = WorkflowCommand(
            fail_workflow_execution=FailWorkflowExecution(failure=self._failure())
        )
        return WorkflowActivationCompletion(
            run_id=act.run_id, successful=Success(commands=[command])
        )

    def _after_refusal(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        commands = [
            WorkflowCommand(
                respond_to_query=QueryResult(
                    query_id=job.query_workflow.query_id, failed=self._failure()
                )
            )
            for job in act.jobs
            if job.HasField("query_workflow")
        ]
        return WorkflowActivationCompletion(
            run_id=act.run_id, successful=Success(commands=commands)
        )
