"""``fleet status``: every queue and every worker in one view.

    fleet status [QUEUE ...] [--json] [--watch [--every 5s]] [--stale-after 3m]

``--watch`` redraws the view in place (the standard library's curses) until ``q`` or Ctrl-C.
A part the server does not answer for is one line under "problems"; the rest is shown.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from temporalio.client import Client
from workerkit._fleet_status import FleetStatus, QueueView, WorkerView, fleet_status
from workerkit._registry import Queue, discover_queues, get_queue
from workerkit.cli._common import (
    Subparsers,
    UsageError,
    add_connect_timeout,
    duration_option,
    print_json,
    with_client,
)
from workerkit.cli._rollout import local_version

__all__ = ["register", "render"]


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _queue_lines(q: QueueView) -> list[str]:
    opened = "?" if q.open_executions is None else str(q.open_executions)
    lines = [
        f"{q.name} (task queue {q.task_queue}, deployment {q.deployment}): "
        f"{q.pollers} workflow pollers, {opened} open executions"
    ]
    backlog = ", ".join(
        f"{kind} {b.count} (oldest {_age(b.oldest_seconds)})" for kind, b in q.backlog.items()
    )
    priorities = ", ".join(
        f"{key}: {b.count}"
        for key, b in sorted(q.backlog_by_priority.items(), key=lambda kv: int(kv[0]))
        if b.count
    )
    lines.append(
        f"  backlog: {backlog or '?'}" + (f"; by priority {priorities}" if priorities else "")
    )
    if q.builds:
        lines.append(
            f"  {'BUILD ID':<34} {'STATUS':<9} {'RAMP':>5} {'POLLERS':>7} {'OPEN':>6} BACKLOG"
        )
        for b in q.builds:
            ramp = f"{b.ramp_percentage:g}%" if b.status == "ramping" else "-"
            opened = "?" if b.open_executions is None else str(b.open_executions)
            backlog_of = (
                "?"
                if b.backlog is None
                else f"{b.backlog.count} ({_age(b.backlog.oldest_seconds)})"
            )
            lines.append(
                f"  {b.build_id:<34} {b.status:<9} {ramp:>5} {b.pollers:>7} {opened:>6} "
                + backlog_of
            )
    elif not q.builds_read:
        lines.append("  builds: not read (see the problems below)")
    else:
        lines.append("  no versioned build has polled (unversioned workers only, or none)")
    if q.rollout:
        lines.append(f"  rollout: {q.rollout}")
    if q.limits:
        lines.append(f"  limits: {q.limits}")
    for s in q.schedules:
        state = (
            "not synced (fleet schedules sync)"
            if not s.synced
            else ("paused" if s.paused else f"next run {s.next_run or 'none'}")
        )
        lines.append(f"  schedule {s.id}: {state}")
    return lines


def _worker_line(w: WorkerView) -> str:
    slots = " ".join(f"{kind} {used}/{used + free}" for kind, (used, free) in w.slots.items())
    flag = "  STALE: no heartbeat" if w.stale else ""
    build = w.build_id if w.deployment else f"{w.build_id or '-'} (unversioned)"
    return (
        f"  {w.host + ':' + w.process_id:<22} {w.task_queue:<20} {build:<34} {w.status:<13} "
        f"{slots or '-':<40} {_age(w.seconds_since_heartbeat)} ago{flag}"
    )


def render(status: FleetStatus) -> list[str]:
    """The status as lines of text."""
    lines = [f"namespace {status.namespace}, read {status.read_at}", ""]
    for q in status.queues:
        lines += [*_queue_lines(q), ""]
    stale = sum(w.stale for w in status.workers)
    lines.append(f"WORKERS ({len(status.workers)}, {stale} stale)")
    if status.workers:
        lines.append(
            f"  {'HOST:PID':<22} {'TASK QUEUE':<20} {'BUILD ID':<34} {'STATUS':<13} "
            f"{'SLOTS used/total':<40} LAST HEARTBEAT"
        )
        lines += [_worker_line(w) for w in status.workers]
    if status.problems:
        lines += ["", "PROBLEMS", *(f"  {p}" for p in status.problems)]
    return lines


def _watch(read: Callable[[], list[str]], every: float, stop: threading.Event) -> int:
    import curses

    def loop(screen: curses.window) -> None:
        curses.curs_set(0)
        screen.timeout(200)
        next_read = 0.0
        while not stop.is_set():
            if time.monotonic() >= next_read:
                lines = read()
                next_read = time.monotonic() + every
                screen.erase()
                height, width = screen.getmaxyx()
                shown = [*lines, "", "q: quit"]
                if len(shown) > height - 1:  # say so rather than drop the last lines unseen
                    shown = [*shown[: height - 2], f"... {len(shown) - height + 2} more lines"]
                for row, line in enumerate(shown):
                    screen.addnstr(row, 0, line, width - 1)
                screen.refresh()
            if screen.getch() in (ord("q"), 27):
                return

    curses.wrapper(loop)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    queues: list[Queue] = (
        [get_queue(n) for n in args.queues] if args.queues else list(discover_queues().values())
    )
    if not queues:
        raise UsageError("no queues are installed")
    stale_after = timedelta(seconds=duration_option(args.stale_after, "--stale-after"))
    every = duration_option(args.every, "--every")
    if every <= 0:
        raise UsageError("--every must be above 0")
    if args.watch and args.json:
        raise UsageError("--watch draws for a terminal; --json is for scripts: pick one")
    if args.watch and not sys.stdout.isatty():
        raise UsageError("--watch needs a terminal")
    deployments = {q.name: local_version(q).deployment_name for q in queues}

    async def body(client: Client) -> int:
        async def read() -> FleetStatus:
            status = await fleet_status(client, queues, deployments, stale_after=stale_after)
            if args.queues:  # the named queues' workers only
                task_queues = {q.task_queue for q in queues}
                status = dataclasses.replace(
                    status, workers=[w for w in status.workers if w.task_queue in task_queues]
                )
            return status

        if args.watch:
            loop = asyncio.get_running_loop()
            # curses blocks, so it draws in a thread and asks this loop for each reading;
            # Ctrl-C reaches this (main) thread only, which tells the drawing to stop.
            stop = threading.Event()
            loop.add_signal_handler(signal.SIGINT, stop.set)
            try:
                return await loop.run_in_executor(
                    None,
                    _watch,
                    lambda: render(asyncio.run_coroutine_threadsafe(read(), loop).result()),
                    every,
                    stop,
                )
            finally:
                loop.remove_signal_handler(signal.SIGINT)
        status = await read()
        if args.json:
            print_json(dataclasses.asdict(status))
        else:
            print("\n".join(render(status)))
        return 0

    return with_client(args, body)


def register(sub: Subparsers) -> None:
    """Add ``fleet status`` to the CLI."""
    p = sub.add_parser(
        "status",
        help="every queue (builds, backlog, rollout, schedules) and every worker, in one view",
        description="The fleet as the server sees it: each queue's builds with their pollers, "
        "open executions and backlog (count and age of the oldest task, per build and per "
        "priority key), its rollout and schedules; every worker from its heartbeats, with its "
        "slots, flagged stale when its heartbeats stopped. A part that cannot be read is one "
        "line under PROBLEMS.",
    )
    p.add_argument("queues", nargs="*", metavar="QUEUE", help="default: every installed queue")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--watch", action="store_true", help="redraw in place until q or Ctrl-C")
    p.add_argument("--every", default="5s", help="--watch: time between readings (default 5s)")
    p.add_argument(
        "--stale-after",
        default="3m",
        help="a running worker without a heartbeat for this long is stale (default 3m: three "
        "of the SDK's 60 s heartbeats)",
    )
    add_connect_timeout(p)
    p.set_defaults(func=_cmd_status)
