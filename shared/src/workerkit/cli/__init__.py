"""The ``fleet`` command: queues, workers, workflows, schedules and namespaces."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from importlib.metadata import entry_points
from typing import NoReturn

from temporalio.client import Client
from temporalio.service import RPCError
from workerkit._env import parse_duration
from workerkit._errors import ConfigurationError, WorkerkitError
from workerkit._namespace import ensure_namespace
from workerkit._registry import discover_queues, get_queue
from workerkit._runner import exit_process, run_queues
from workerkit._settings import WorkerSettings
from workerkit.cli import _codec, _db, _deploy
from workerkit.cli._common import EXIT_USAGE, _print_json, _UsageError, _with_client
from workerkit.cli._schedules import (
    _cmd_schedules_list,
    _cmd_schedules_pause,
    _cmd_schedules_sync,
    _cmd_schedules_trigger,
    _cmd_schedules_unpause,
)
from workerkit.cli._workflows import (
    _cmd_query,
    _cmd_result,
    _cmd_signal,
    _cmd_start,
    _cmd_update,
)

__all__ = ["main", "run"]

COMMANDS_ENTRY_POINT_GROUP = "workerkit.commands"
# Namespace names: letters, digits, "-", "_" and "." (what the server and Temporal Cloud
# take); an empty, blank or spaced name is refused here rather than by the server.
NAMESPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")


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
                    # Its activities keep state in DATABASE_URL (migrated by `fleet db migrate`).
                    "keeps_state": q.migrations is not None,
                    # How its work behaves (Queue.shape): the chart's scaling defaults.
                    "shape": q.shape,
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


def _cmd_namespace_ensure(args: argparse.Namespace) -> int:
    try:
        retention = parse_duration(args.retention)
    except ValueError:
        raise _UsageError(
            f"--retention {args.retention!r} is not a duration (e.g. 7d, 72h)"
        ) from None
    if retention < timedelta(days=1):
        raise _UsageError("--retention must be at least 1d (Temporal's minimum)")
    if not NAMESPACE_NAME.match(args.name):
        raise _UsageError(
            f"namespace name {args.name!r} is invalid: 2 to 255 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )

    async def body(client: Client) -> int:
        outcome = await ensure_namespace(
            client, args.name, retention=retention, description=args.description
        )
        print(f"namespace {args.name}: {outcome} (retention {args.retention})")
        return 0

    return _with_client(args, body)


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
        p = client_command(name, f"{what} to a running workflow")
        p.add_argument("workflow_id")
        p.add_argument("name")
        p.add_argument("args", nargs="*", metavar="JSON", help="JSON, @FILE or - (stdin)")
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

    _deploy.register(sub)
    _codec.register(sub)
    _db.register(sub)

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
