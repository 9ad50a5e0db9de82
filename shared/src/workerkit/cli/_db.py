"""``fleet db migrate`` and ``fleet db status``: the queues' schemas in ``DATABASE_URL``."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from workerkit._env_settings import parse_duration
from workerkit._registry import Queue, discover_queues, get_queue
from workerkit.cli._common import Subparsers, UsageError, print_json

if TYPE_CHECKING:  # SQLAlchemy and Alembic load when a `fleet db` command runs
    from workerkit._database import Database
    from workerkit._migrations import SchemaState

__all__ = ["register"]


def _queues(names: list[str]) -> list[Queue]:
    queues = [get_queue(n) for n in names] if names else list(discover_queues().values())
    stateless = [q.name for q in queues if not q.migrations]
    if names and stateless:
        raise UsageError(f"queue {', '.join(stateless)} keeps no state in the database")
    return [q for q in queues if q.migrations]


def _open(args: argparse.Namespace) -> Database:
    from workerkit._database import Database, DatabaseUnavailable, database_url

    db = Database(database_url(), pool_size=1, application_name="fleet-db")
    try:
        wait = parse_duration(args.wait).total_seconds()
    except ValueError:
        raise UsageError(f"--wait {args.wait!r} is not a duration (e.g. 60s, 2m)") from None
    # A one-shot Job or compose service may start before the database accepts connections.
    deadline = time.monotonic() + wait
    delay = 0.5
    while True:
        try:
            db.ping()
            return db
        except DatabaseUnavailable:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _describe(state: SchemaState) -> str:
    return state.current or "empty"


def _cmd_migrate(args: argparse.Namespace) -> int:
    from workerkit._migrations import migrate

    queues = _queues(args.queues)
    db = _open(args)
    try:
        for before, now in migrate(db, queues):
            if before.up_to_date:
                print(f"{before.queue}: up to date at {now}")
            elif not before.known:
                print(f"{before.queue}: at {now}, newer than this build's {before.head}: unchanged")
            else:
                print(f"{before.queue}: migrated {_describe(before)} -> {now}")
    finally:
        db.dispose()
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from workerkit._migrations import schema_states

    queues = _queues(args.queues)
    db = _open(args)
    try:
        states = schema_states(db, queues)
    finally:
        db.dispose()
    if args.json:
        print_json(
            [
                {"queue": s.queue, "current": s.current, "head": s.head, "up_to_date": s.up_to_date}
                for s in states
            ]
        )
    else:
        for s in states:
            verdict = (
                "up to date"
                if s.up_to_date
                else f"behind: needs {s.head}"
                if s.behind
                else f"newer than this build ({s.head})"
            )
            print(f"{s.queue:<16} {_describe(s):<24} {verdict}")
    return 1 if any(s.behind for s in states) else 0


def register(sub: Subparsers) -> None:
    """Add ``fleet db`` and its actions to the CLI."""
    db = sub.add_parser(
        "db",
        help="the queues' database schemas (DATABASE_URL; default: SQLite in WORKER_STATE_DIR)",
    )
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    for name, func, what in (
        ("migrate", _cmd_migrate, "apply every pending migration, in one transaction"),
        ("status", _cmd_status, "show each queue's schema revision; exit 1 if one is behind"),
    ):
        p = actions.add_parser(name, help=what, description=what)
        p.add_argument("queues", nargs="*", metavar="QUEUE", help="default: every stateful queue")
        p.add_argument(
            "--wait", default="0s", help="wait this long for the database to answer (e.g. 60s)"
        )
        if name == "status":
            p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=func)
