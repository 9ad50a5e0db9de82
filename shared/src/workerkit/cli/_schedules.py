"""Commands on the queues' declared schedules: sync, list, pause, unpause, trigger."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleHandle,
)
from temporalio.service import RPCError, RPCStatusCode
from workerkit._registry import discover_queues, get_queue
from workerkit._schedule_sync import declared_schedules, find_schedule, sync_schedules
from workerkit.cli._common import Subparsers, client_command, print_json, with_client

__all__ = ["register"]


def _cmd_schedules_sync(args: argparse.Namespace) -> int:
    queues = [get_queue(n) for n in args.queues] or list(discover_queues().values())

    async def body(client: Client) -> int:
        results = await sync_schedules(client, queues)
        for schedule_id, outcome in results:
            print(f"schedule {schedule_id}: {outcome}")
        if not results:
            print(f"no schedules declared by {', '.join(q.name for q in queues) or 'any queue'}")
        return 0

    return with_client(args, body)


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
            print_json(rows)
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

    return with_client(args, body)


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

    return with_client(args, body)


def _cmd_schedules_pause(args: argparse.Namespace) -> int:
    return _on_schedule(args, "paused", lambda h: h.pause(note=args.note))


def _cmd_schedules_unpause(args: argparse.Namespace) -> int:
    return _on_schedule(args, "unpaused", lambda h: h.unpause(note=args.note))


def _cmd_schedules_trigger(args: argparse.Namespace) -> int:
    return _on_schedule(args, "triggered", lambda h: h.trigger())


def register(sub: Subparsers) -> None:
    """Add ``fleet schedules`` and its actions to the CLI."""
    sc = sub.add_parser("schedules", help="sync and operate the queues' declared schedules")
    actions = sc.add_subparsers(dest="schedules_command", required=True, metavar="ACTION")

    p = client_command(actions, "sync", "create or update declared schedules (idempotent)")
    p.add_argument("queues", nargs="*", metavar="QUEUE", help="default: every installed queue")
    p.set_defaults(func=_cmd_schedules_sync)
    p = client_command(actions, "list", "list declared schedules and their state on the server")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_schedules_list)
    for name, func, what, default_note in (
        ("pause", _cmd_schedules_pause, "pause a schedule", "paused with fleet"),
        ("unpause", _cmd_schedules_unpause, "unpause a schedule", "unpaused with fleet"),
    ):
        p = client_command(actions, name, what)
        p.add_argument("schedule_id", help="e.g. notifications-digest")
        p.add_argument("--note", default=default_note, help="why (shown by list and the UI)")
        p.set_defaults(func=func)
    p = client_command(actions, "trigger", "start a schedule's workflow now")
    p.add_argument("schedule_id", help="e.g. notifications-digest")
    p.set_defaults(func=_cmd_schedules_trigger)
