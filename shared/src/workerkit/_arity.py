"""Calls with the wrong number of arguments, refused before they reach a workflow's code.

The strict converter (``_strict``) checks each argument against its declared type; the
*count* it cannot check, and the SDK calls the code with whatever arrived. A start from the
``temporal`` CLI with no ``--input``, or another SDK's client passing one argument too many,
then raises ``TypeError`` inside the workflow task, which fails, and Temporal retries it
forever. So, for every workflow of every queue:

- a start with too few or too many arguments fails the workflow at once, non-retryable
  (``InvalidInput``), naming the run method's parameters;
- a signal is dropped with one warning naming it and its parameters (it is fire-and-forget:
  there is no caller to answer), counted in ``workerkit_signals_dropped_total``, and the
  workflow goes on;
- a query or an update fails to its caller with the same message (an update with a
  validator is rejected, one without fails), and the workflow goes on.

The decision depends only on the history's payloads, so a replay makes it again.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ExecuteWorkflowInput,
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)
from workerkit._metrics import SIGNALS_DROPPED
from workerkit._strict import INVALID_INPUT

__all__ = ["ArityInterceptor", "arity_problem"]

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
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        problem = arity_problem(input.run_fn, input.args, unbound=True)
        if problem is not None:
            raise ApplicationError(
                f"{workflow.info().workflow_type} {problem} argument(s)",
                type=INVALID_INPUT,
                non_retryable=True,
            )
        return await super().execute_workflow(input)

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
