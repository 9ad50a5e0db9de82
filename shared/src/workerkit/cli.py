"""The ``fleet`` command: queues, workers, workflows, schedules and namespaces."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from importlib.metadata import entry_points
from typing import Any, NoReturn, TypeVar

import uvloop
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleHandle,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.converter import value_to_type
from temporalio.service import RPCError, RPCStatusCode
from workerkit._connection import connect
from workerkit._errors import ConfigurationError, WorkerkitError
from workerkit._launcher import launch
from workerkit._namespace import ensure_namespace
from workerkit._registry import discover_queues, get_queue
from workerkit._runner import exit_process, run_queues
from workerkit._schedules import declared_schedules, find_schedule, sync_schedules
from workerkit._settings import WorkerSettings, parse_duration
from workerkit._tracing import configure_tracing, tracing_interceptor

__all__ = ["main", "run"]

EXIT_USAGE = 2
COMMANDS_ENTRY_POINT_GROUP = "workerkit.commands"
_T = TypeVar("_T")


class _UsageError(ConfigurationError):
    """Bad command-line input."""


def _json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise _UsageError(
            f"{what} is not valid JSON ({err.msg} at column {err.colno}): {text}"
        ) from None


def _json_args(raw: Sequence[str]) -> list[Any]:
    return [_json_arg(text, f"argument {i + 1}") for i, text in enumerate(raw)]


def _to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def _print_json(value: Any) -> None:
    print(json.dumps(value, default=_to_jsonable, indent=2, sort_keys=True))


def _with_client(args: argparse.Namespace, body: Callable[[Client], Awaitable[_T]]) -> _T:
    async def go() -> _T:
        client = await connect(
            timeout=parse_duration(args.connect_timeout), interceptors=[tracing_interceptor()]
        )
        return await body(client)

    provider = configure_tracing()
    try:
        return uvloop.run(go())
    finally:
        if provider is not None:
            provider.shutdown()


# -- commands -----------------------------------------------------------------------------


def _cmd_queues(args: argparse.Namespace) -> int:
    queues = discover_queues()
    if args.json:
        _print_json(
            [
                {
                    "name": q.name,
                    "version": q.version,
                    "task_queue": q.task_queue,
                    "workflows": sorted(q.workflow_types()),
                    "description": q.description,
                }
                for q in queues.values()
            ]
        )
        return 0
    for q in queues.values():
        print(f"{q.name:<16} {q.task_queue:<20} {', '.join(sorted(q.workflow_types()))}")
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    if args.all == bool(args.queues):
        raise _UsageError("name one or more queues, or pass --all (not both)")
    queues = list(discover_queues().values()) if args.all else [get_queue(n) for n in args.queues]
    if not queues:
        raise _UsageError("no queues are installed")
    return run_queues(queues)


def _cmd_settings(args: argparse.Namespace) -> int:
    for variable, accepted, doc in WorkerSettings.describe():
        print(f"{variable:<36} {doc} ({accepted})")
    return 0


def _typed_args(queue_name: str, workflow_type: str, raw: Sequence[str]) -> list[Any]:
    queue = get_queue(queue_name)
    values = _json_args(raw)
    types = queue.workflow_arg_types(workflow_type)
    if types is None:
        return values
    if len(values) != len(types):
        names = ", ".join(getattr(t, "__name__", str(t)) for t in types)
        raise _UsageError(
            f"{workflow_type} takes {len(types)} argument(s) ({names}); got {len(values)}"
        )
    typed = []
    for i, (value, hint) in enumerate(zip(values, types, strict=True)):
        try:
            typed.append(value_to_type(hint, value))
        except (TypeError, ValueError, KeyError) as err:
            name = getattr(hint, "__name__", str(hint))
            raise _UsageError(f"argument {i + 1} does not fit {name}: {err}") from None
    return typed


def _cmd_start(args: argparse.Namespace) -> int:
    queue = get_queue(args.queue)
    typed = _typed_args(args.queue, args.workflow, args.args)
    memo = _json_arg(args.memo, "--memo") if args.memo else None
    if memo is not None and not isinstance(memo, dict):
        raise _UsageError("--memo must be a JSON object")

    async def body(client: Client) -> int:
        launched = await launch(client, queue, args.workflow, *typed, id=args.id, memo=memo)
        if not args.wait:
            _print_json(
                {
                    "workflow_id": launched.workflow_id,
                    "run_id": launched.run_id,
                    "started": launched.started,
                    "task_queue": queue.task_queue,
                }
            )
            return 0
        return await _print_result(launched.handle)

    return _with_client(args, body)


def _on_workflow(
    args: argparse.Namespace, action: Callable[[WorkflowHandle[Any, Any]], Awaitable[int]]
) -> int:
    return _with_client(args, lambda client: action(client.get_workflow_handle(args.workflow_id)))


async def _print_result(handle: WorkflowHandle[Any, Any]) -> int:
    try:
        result = await handle.result()
    except WorkflowFailureError as err:
        print(f"workflow {handle.id} failed: {err.cause}", file=sys.stderr)
        return 1
    _print_json(result)
    return 0


def _cmd_signal(args: argparse.Namespace) -> int:
    values = _json_args(args.args)

    async def action(handle: WorkflowHandle[Any, Any]) -> int:
        await handle.signal(args.name, args=values)
        print(f"signal {args.name} sent to {handle.id}")
        return 0

    return _on_workflow(args, action)


def _cmd_query(args: argparse.Namespace) -> int:
    values = _json_args(args.args)

    async def action(handle: WorkflowHandle[Any, Any]) -> int:
        _print_json(await handle.query(args.name, args=values))
        return 0

    return _on_workflow(args, action)


def _cmd_update(args: argparse.Namespace) -> int:
    values = _json_args(args.args)

    async def action(handle: WorkflowHandle[Any, Any]) -> int:
        try:
            result = await handle.execute_update(args.name, args=values)
        except WorkflowUpdateFailedError as err:
            print(f"update {args.name} rejected: {err.cause}", file=sys.stderr)
            return 1
        _print_json(result)
        return 0

    return _on_workflow(args, action)


def _cmd_result(args: argparse.Namespace) -> int:
    return _on_workflow(args, _print_result)


def _cmd_namespace_ensure(args: argparse.Namespace) -> int:
    try:
        retention = parse_duration(args.retention)
    except ValueError:
        raise _UsageError(
            f"--retention {args.retention!r} is not a duration (e.g. 7d, 72h)"
        ) from None
    if retention < timedelta(days=1):
        raise _UsageError("--retention must be at least 1d (Temporal's minimum)")

    async def body(client: Client) -> int:
        outcome = await ensure_namespace(
            client, args.name, retention=retention, description=args.description
        )
        print(f"namespace {args.name}: {outcome} (retention {args.retention})")
        return 0

    return _with_client(args, body)


def _cmd_schedules_sync(args: argparse.Namespace) -> int:
    queues = [get_queue(n) for n in args.queues] or list(discover_queues().values())

    async def body(client: Client) -> int:
        results = await sync_schedules(client, queues)
        for schedule_id, outcome in results:
            print(f"schedule {schedule_id}: {outcome}")
        if not results:
            print(f"no schedules declared by {', '.join(q.name for q in queues) or 'any queue'}")
        return 0

    return _with_client(args, body)


def _cmd_schedules_list(args: argparse.Namespace) -> int:
    declared = declared_schedules(discover_queues().values())

    async def body(client: Client) -> int:
        rows = []
        for schedule_id, (queue, schedule) in declared.items():
            row: dict[str, Any] = {
                "id": schedule_id,
                "queue": queue.name,
                "workflow": schedule.workflow_type,
                "task_queue": queue.task_queue,
                "spec": schedule.describe_spec(),
                "exists": True,
            }
            try:
                described = await client.get_schedule_handle(schedule_id).describe()
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                row |= {"exists": False, "paused": None, "note": None, "next_run": None}
            else:
                state, info = described.schedule.state, described.info
                row |= {
                    "paused": state.paused,
                    "note": state.note or "",
                    "next_run": min(info.next_action_times, default=None),
                    "recent_runs": [
                        a.action.workflow_id
                        for a in info.recent_actions
                        if isinstance(a.action, ScheduleActionExecutionStartWorkflow)
                    ],
                }
            rows.append(row)
        if args.json:
            _print_json(rows)
            return 0
        for row in rows:
            if not row["exists"]:
                status = "missing (run `fleet schedules sync`)"
            else:
                status = "paused" if row["paused"] else "active"
                if row["next_run"] is not None and not row["paused"]:
                    status += f", next {row['next_run']:%Y-%m-%d %H:%M:%S}Z"
                if row["note"]:
                    status += f", note: {row['note']}"
            print(f"{row['id']:<28} {row['workflow']:<20} {row['spec']:<24} {status}")
        return 0

    return _with_client(args, body)


def _on_schedule(
    args: argparse.Namespace, verb: str, action: Callable[[ScheduleHandle], Awaitable[None]]
) -> int:
    find_schedule(discover_queues().values(), args.schedule_id)

    async def body(client: Client) -> int:
        try:
            await action(client.get_schedule_handle(args.schedule_id))
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            print(
                f"error: schedule {args.schedule_id} is declared but not on the server; "
                "run `fleet schedules sync`",
                file=sys.stderr,
            )
            return 1
        print(f"schedule {args.schedule_id}: {verb}")
        return 0

    return _with_client(args, body)


def _cmd_schedules_pause(args: argparse.Namespace) -> int:
    return _on_schedule(args, "paused", lambda h: h.pause(note=args.note))


def _cmd_schedules_unpause(args: argparse.Namespace) -> int:
    return _on_schedule(args, "unpaused", lambda h: h.unpause(note=args.note))


def _cmd_schedules_trigger(args: argparse.Namespace) -> int:
    return _on_schedule(args, "triggered", lambda h: h.trigger())


# -- parser -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleet",
        description="Run and drive the Temporal worker fleet. Connection settings come from "
        "TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def client_command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--connect-timeout", default="10s", help="give up connecting after this")
        return p

    p = sub.add_parser("queues", help="list installed queues")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_queues)

    p = sub.add_parser("worker", help="run the worker of one or more queues")
    p.add_argument("queues", nargs="*", metavar="QUEUE")
    p.add_argument("--all", action="store_true", help="every installed queue in one process")
    p.set_defaults(func=_cmd_worker)

    p = sub.add_parser("settings", help="list the WORKER_* environment variables")
    p.set_defaults(func=_cmd_settings)

    p = client_command("start", "start a workflow (idempotent per workflow id)")
    p.add_argument("queue")
    p.add_argument("workflow", help="workflow type, e.g. OrderWorkflow")
    p.add_argument("args", nargs="*", metavar="JSON", help="workflow arguments as JSON")
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
        p = client_command(name, f"{what} to a running workflow")
        p.add_argument("workflow_id")
        p.add_argument("name")
        p.add_argument("args", nargs="*", metavar="JSON")
        p.set_defaults(func=func)

    p = client_command("result", "wait for a workflow's result and print it")
    p.add_argument("workflow_id")
    p.set_defaults(func=_cmd_result)

    ns = sub.add_parser("namespace", help="manage Temporal namespaces")
    ns_sub = ns.add_subparsers(dest="namespace_command", required=True, metavar="ACTION")
    p = ns_sub.add_parser("ensure", help="register a namespace if missing; set its retention")
    p.add_argument("--connect-timeout", default="60s", help="give up connecting after this")
    p.add_argument("name")
    p.add_argument("--retention", default="7d", help="workflow history retention (default 7d)")
    p.add_argument("--description", default="")
    p.set_defaults(func=_cmd_namespace_ensure)

    sc = sub.add_parser("schedules", help="sync and operate the queues' declared schedules")
    sc_sub = sc.add_subparsers(dest="schedules_command", required=True, metavar="ACTION")

    def schedules_command(name: str, help: str) -> argparse.ArgumentParser:
        p = sc_sub.add_parser(name, help=help, description=help)
        p.add_argument("--connect-timeout", default="10s", help="give up connecting after this")
        return p

    p = schedules_command("sync", "create or update declared schedules (idempotent)")
    p.add_argument("queues", nargs="*", metavar="QUEUE", help="default: every installed queue")
    p.set_defaults(func=_cmd_schedules_sync)
    p = schedules_command("list", "list declared schedules and their state on the server")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_schedules_list)
    for name, func, what, default_note in (
        ("pause", _cmd_schedules_pause, "pause a schedule", "paused with fleet"),
        ("unpause", _cmd_schedules_unpause, "unpause a schedule", "unpaused with fleet"),
    ):
        p = schedules_command(name, what)
        p.add_argument("schedule_id", help="e.g. notifications-digest")
        p.add_argument("--note", default=default_note, help="why (shown by list and the UI)")
        p.set_defaults(func=func)
    p = schedules_command("trigger", "start a schedule's workflow now")
    p.add_argument("schedule_id", help="e.g. notifications-digest")
    p.set_defaults(func=_cmd_schedules_trigger)

    # Development tools installed in the workspace (e.g. the queue scaffold) add their
    # commands here; production images don't install them, so they don't appear there.
    for ep in entry_points(group=COMMANDS_ENTRY_POINT_GROUP):
        ep.load()(sub)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    args = _parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.func
    try:
        return command(args)
    except ConfigurationError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (WorkerkitError, RPCError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def main() -> NoReturn:
    """Console-script entry point."""
    exit_process(run())


if __name__ == "__main__":
    main()
