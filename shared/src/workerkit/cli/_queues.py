"""Commands on the installed queues: list them, run their workers, list the worker settings,
check their workflow code for calls that break replay."""

from __future__ import annotations

import argparse
import sys

from workerkit._determinism import check_queue
from workerkit._registry import discover_queues, get_queue
from workerkit._replay_gate import stored_histories
from workerkit._runner import run_queues
from workerkit._settings import WorkerSettings
from workerkit.cli._common import Subparsers, UsageError, print_json

__all__ = ["register"]


def _cmd_queues(args: argparse.Namespace) -> int:
    queues = discover_queues()
    if args.json:
        print_json(
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
                    # What its replay gate replays besides the server's executions.
                    "stored_histories": len(stored_histories(q)),
                }
                for q in queues.values()
            ]
        )
        return 0
    for q in queues.values():
        types = ", ".join(sorted(q.workflow_types()))
        stored = len(stored_histories(q))
        print(f"{q.name:<16} {q.task_queue:<20} {types}  ({stored} stored histories)")
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    if args.all == bool(args.queues):
        raise UsageError("name one or more queues, or pass --all (not both)")
    queues = list(discover_queues().values()) if args.all else [get_queue(n) for n in args.queues]
    if not queues:
        raise UsageError("no queues are installed")
    return run_queues(queues)


EXIT_FINDINGS = 1


def _cmd_workflowcheck(args: argparse.Namespace) -> int:
    if args.all == bool(args.queues):
        raise UsageError("name one or more queues, or pass --all (not both)")
    queues = list(discover_queues().values()) if args.all else [get_queue(n) for n in args.queues]
    findings = [f for q in queues for f in check_queue(q)]
    for finding in findings:
        print(finding)
    names = ", ".join(q.name for q in queues)
    if findings:
        print(
            f"error: {len(findings)} call(s) in the workflow code of {names} would break replay; "
            "move them into an activity, use the workflow API, or mark a vetted line "
            "`# determinism-ok: <why>`",
            file=sys.stderr,
        )
        return EXIT_FINDINGS
    print(f"workflowcheck: no call that breaks replay in {names}")
    return 0


def _cmd_settings(args: argparse.Namespace) -> int:
    for variable, accepted, doc in WorkerSettings.describe():
        print(f"{variable:<36} {doc} ({accepted})")
    return 0


def register(sub: Subparsers) -> None:
    """Add ``fleet queues``, ``worker`` and ``settings`` to the CLI."""
    p = sub.add_parser("queues", help="list installed queues")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_queues)

    p = sub.add_parser("worker", help="run the worker of one or more queues")
    p.add_argument("queues", nargs="*", metavar="QUEUE")
    p.add_argument("--all", action="store_true", help="every installed queue in one process")
    p.set_defaults(func=_cmd_worker)

    p = sub.add_parser(
        "workflowcheck",
        help="static determinism check of the queues' workflow code (exit 1: a finding)",
        description="Report each call in a queue's workflow classes, or in its service's "
        "code they call, that the SDK's sandbox would refuse (clock, random, ids, environment, "
        "files, network, threads, blocking sleeps, module-level state), as file:line: call (why).",
    )
    p.add_argument("queues", nargs="*", metavar="QUEUE")
    p.add_argument("--all", action="store_true", help="every installed queue")
    p.set_defaults(func=_cmd_workflowcheck)

    p = sub.add_parser("settings", help="list the WORKER_* environment variables")
    p.set_defaults(func=_cmd_settings)
