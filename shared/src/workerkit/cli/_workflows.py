"""Commands on workflows: start (typed, idempotent), signal, query, update, result."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from temporalio import workflow
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from workerkit._launcher import launch
from workerkit._registry import discover_queues, get_queue
from workerkit._strict import InputMismatch, convert
from workerkit.cli._common import (
    Subparsers,
    UsageError,
    client_command,
    json_arg,
    json_args,
    print_json,
    with_client,
)

__all__ = ["register"]


def _fit(types: Sequence[Any] | None, values: list[Any], what: str) -> list[Any]:
    """Convert JSON ``values`` to ``types`` (when fully typed), or raise a usage error."""
    if types is None:
        return values
    if len(values) != len(types):
        names = ", ".join(getattr(t, "__name__", str(t)) for t in types)
        raise UsageError(f"{what} takes {len(types)} argument(s) ({names}); got {len(values)}")
    typed = []
    for i, (value, hint) in enumerate(zip(values, types, strict=True)):
        try:
            typed.append(convert(value, hint))
        except InputMismatch as err:
            name = getattr(hint, "__name__", str(hint))
            raise UsageError(f"{what}: argument {i + 1} does not fit {name}: {err}") from None
    return typed


def _typed_args(queue_name: str, workflow_type: str, raw: Sequence[str]) -> list[Any]:
    queue = get_queue(queue_name)
    return _fit(queue.workflow_arg_types(workflow_type), json_args(raw), workflow_type)


_HANDLERS = {"signal": "signals", "query": "queries", "update": "updates"}


async def _checked_handler_args(
    handle: WorkflowHandle[Any, Any], kind: str, name: str, values: list[Any]
) -> list[Any]:
    """Check ``name`` and ``values`` against the running workflow's declared handlers.

    The workflow's type and task queue come from the server; when they are a registered
    queue's, an unknown handler name or an argument that does not fit is refused here,
    before anything is sent (a signal the worker cannot decode would be dropped silently).
    """
    described = await handle.describe()
    queue = next(
        (q for q in discover_queues().values() if q.task_queue == described.task_queue), None
    )
    if queue is None or described.workflow_type not in queue.workflow_types():
        return values  # not a workflow this installation knows: send as given
    defn = workflow._Definition.must_from_class(queue.workflow_class(described.workflow_type))
    handlers: dict[str | None, Any] = getattr(defn, _HANDLERS[kind])
    handler = handlers.get(name) or handlers.get(None)  # None: a dynamic handler
    if handler is None:
        known = ", ".join(sorted(n for n in handlers if n)) or "none"
        raise UsageError(
            f"{described.workflow_type} {handle.id} has no {kind} {name!r}; its {_HANDLERS[kind]}: "
            f"{known}"
        )
    if handler.name is None:
        return values
    return _fit(handler.arg_types, values, f"{kind} {name}")


def _cmd_start(args: argparse.Namespace) -> int:
    queue = get_queue(args.queue)
    if args.id is not None and not args.id.strip():
        raise UsageError("--id must not be empty (omit it for the queue's deterministic id)")
    typed = _typed_args(args.queue, args.workflow, args.args)
    memo = json_arg(args.memo, "--memo") if args.memo else None
    if memo is not None and not isinstance(memo, dict):
        raise UsageError("--memo must be a JSON object")

    async def body(client: Client) -> int:
        launched = await launch(client, queue, args.workflow, *typed, id=args.id, memo=memo)
        if not args.wait:
            print_json(
                {
                    "workflow_id": launched.workflow_id,
                    "run_id": launched.run_id,
                    "started": launched.started,
                    "task_queue": queue.task_queue,
                }
            )
            return 0
        return await _print_result(launched.handle)

    return with_client(args, body)


def _on_workflow(
    args: argparse.Namespace, action: Callable[[WorkflowHandle[Any, Any]], Awaitable[int]]
) -> int:
    return with_client(args, lambda client: action(client.get_workflow_handle(args.workflow_id)))


async def _print_result(handle: WorkflowHandle[Any, Any]) -> int:
    try:
        result = await handle.result()
    except WorkflowFailureError as err:
        print(f"workflow {handle.id} failed: {err.cause}", file=sys.stderr)
        return 1
    print_json(result)
    return 0


def _cmd_signal(args: argparse.Namespace) -> int:
    values = json_args(args.args)

    async def action(handle: WorkflowHandle[Any, Any]) -> int:
        typed = await _checked_handler_args(handle, "signal", args.name, values)
        await handle.signal(args.name, args=typed)
        print(f"signal {args.name} sent to {handle.id}")
        return 0

    return _on_workflow(args, action)


def _cmd_query(args: argparse.Namespace) -> int:
    values = json_args(args.args)

    async def action(handle: WorkflowHandle[Any, Any]) -> int:
        typed = await _checked_handler_args(handle, "query", args.name, values)
        print_json(await handle.query(args.name, args=typed))
        return 0

    return _on_workflow(args, action)


def _cmd_update(args: argparse.Namespace) -> int:
    values = json_args(args.args)

    async def action(handle: WorkflowHandle[Any, Any]) -> int:
        typed = await _checked_handler_args(handle, "update", args.name, values)
        try:
            result = await handle.execute_update(args.name, args=typed)
        except WorkflowUpdateFailedError as err:
            print(f"update {args.name} rejected: {err.cause}", file=sys.stderr)
            return 1
        print_json(result)
        return 0

    return _on_workflow(args, action)


def _cmd_result(args: argparse.Namespace) -> int:
    return _on_workflow(args, _print_result)


def register(sub: Subparsers) -> None:
    """Add ``fleet start``, ``signal``, ``query``, ``update`` and ``result`` to the CLI."""
    p = client_command(sub, "start", "start a workflow (idempotent per workflow id)")
    p.add_argument("queue")
    p.add_argument("workflow", help="workflow type, e.g. OrderWorkflow")
    p.add_argument(
        "args", nargs="*", metavar="JSON", help="workflow arguments as JSON, @FILE or - (stdin)"
    )
    p.add_argument(
        "--id", help="workflow id (default: the queue's deterministic id for these args)"
    )
    p.add_argument("--memo", help="memo as a JSON object")
    p.add_argument("--wait", action="store_true", help="wait and print the result")
    p.set_defaults(func=_cmd_start)

    for name, func, what in (
        ("signal", _cmd_signal, "send a signal"),
        ("query", _cmd_query, "run a query and print its answer"),
        ("update", _cmd_update, "run an update and print its result"),
    ):
        p = client_command(sub, name, f"{what} to a running workflow")
        p.add_argument("workflow_id")
        p.add_argument("name")
        p.add_argument("args", nargs="*", metavar="JSON", help="JSON, @FILE or - (stdin)")
        p.set_defaults(func=func)

    p = client_command(sub, "result", "wait for a workflow's result and print it")
    p.add_argument("workflow_id")
    p.set_defaults(func=_cmd_result)
