"""``fleet limits``: the queues' task queue rate limits and fairness weights on the server."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from temporalio.client import Client
from workerkit._exceptions import ConfigurationError
from workerkit._fairness import (
    FAIRNESS_SETTING,
    WEIGHT_RANGE,
    RateLimits,
    check_number,
    check_weight,
)
from workerkit._registry import Queue, discover_queues, get_queue
from workerkit._task_queue_limits import (
    KINDS,
    Limits,
    apply_limits,
    declared_limits,
    limits_match,
    read_limits,
)
from workerkit.cli._common import Subparsers, UsageError, client_command, print_json, with_client

__all__ = ["register"]


def _number(text: str | None, option: str) -> float | None:
    # Checked in the command, not by argparse, so bad input is one line (no usage banner).
    if text is None:
        return None
    try:
        return check_number(option, float(text))
    except (ValueError, ConfigurationError):
        raise UsageError(f"{option} must be a number above 0, not {text!r}") from None


def _weight(text: str) -> tuple[str, float]:
    key, sep, raw = text.rpartition("=")
    if not sep or not key:
        raise UsageError(f"--weight takes KEY=WEIGHT, not {text!r}")
    number = _number(raw, f"--weight {key}")
    assert number is not None
    try:
        return key, check_weight(f"--weight {key}", number)
    except ConfigurationError:
        low, high = WEIGHT_RANGE
        raise UsageError(f"--weight {key} must be from {low:g} to {high:g}, not {raw!r}") from None


def _queues(args: argparse.Namespace) -> list[Queue]:
    return [get_queue(n) for n in args.queues] or list(discover_queues().values())


def _overrides(
    args: argparse.Namespace, queues: list[Queue]
) -> tuple[RateLimits, dict[str, float]]:
    limits = RateLimits(
        activity_tasks=_number(args.activity_rate, "--activity-rate"),
        activity_tasks_per_key=_number(args.activity_rate_per_key, "--activity-rate-per-key"),
    )
    weights = dict(_weight(w) for w in args.weight or [])
    if (limits != RateLimits() or weights) and len(queues) != 1:
        raise UsageError("rate and weight options apply to one queue: name it")
    activity_limit = limits.activity_tasks is not None or limits.activity_tasks_per_key is not None
    if activity_limit and not queues[0].limits_activities():
        # Its workers start activities eagerly, past the task queue and so past any limit.
        raise UsageError(
            f"queue {queues[0].name!r} declares no activity rate limit, so its workers start "
            "activities eagerly, past the server's: declare one on the queue first"
        )
    return limits, weights


def _cmd_apply(args: argparse.Namespace) -> int:
    queues = _queues(args)
    limits, weights = _overrides(args, queues)
    keyed = [q.name for q in queues if q.fairness.key is not None or q.fairness.weights]
    if keyed:
        # No server API reports it: say what the keys rely on, once, and go on.
        print(
            f"warning: {', '.join(keyed)} dispatch by fairness key only where the server sets "
            f"{FAIRNESS_SETTING}=true (dynamic config); elsewhere their tasks run first in, "
            "first out",
            file=sys.stderr,
        )

    async def body(client: Client) -> int:
        for queue in queues:
            changes = await apply_limits(
                client, queue, rate_limits=limits, weights=weights, dry_run=args.dry_run
            )
            verb = "would change" if args.dry_run else "changed"
            if not changes:
                print(f"limits {queue.task_queue}: unchanged")
            for change in changes:
                print(f"limits {queue.task_queue}: {verb} {change.describe()}")
        return 0

    return with_client(args, body)


def _cmd_show(args: argparse.Namespace) -> int:
    queues = _queues(args)

    async def body(client: Client) -> int:
        found = []
        for queue in queues:
            live, declared = await read_limits(client, queue), declared_limits(queue)
            found += [(queue, kind, live[kind], declared[kind]) for kind in KINDS]
        if args.json:
            print_json(
                [
                    {
                        "queue": queue.name,
                        "task_queue": queue.task_queue,
                        "type": kind,
                        "fairness_key": _key_text(queue),
                        **_limits_json(have),
                        "declared": _limits_json(want),
                    }
                    for queue, kind, have, want in found
                ]
            )
            return 0
        for queue, kind, have, want in found:
            parts = [f"rate {_rate(have.rate)}"]
            if kind == "activity":
                parts.append(f"per key {_rate(have.rate_per_key)}")
            if have.weights:
                parts.append(
                    "weights " + ", ".join(f"{k}={v:g}" for k, v in sorted(have.weights.items()))
                )
            drift = (
                ""
                if limits_match(have, want)
                else "  (differs from the declaration: an override, or not applied yet)"
            )
            print(f"{queue.task_queue:<20} {kind:<9} {'; '.join(parts)}{drift}")
        return 0

    return with_client(args, body)


def _limits_json(limits: Limits) -> dict[str, Any]:
    return {
        "rate": limits.rate,
        "rate_per_key": limits.rate_per_key,
        "weights": dict(limits.weights),
    }


def _key_text(queue: Queue) -> str | None:
    key = queue.fairness.key
    if key is None or isinstance(key, str):
        return key
    return ", ".join(f"{cls.__name__}.{path}" for cls, path in key.items())


def _rate(value: float | None) -> str:
    return "none" if value is None else f"{value:g}/s"


def register(sub: Subparsers) -> None:
    """Add ``fleet limits`` to the CLI."""
    lim = sub.add_parser(
        "limits", help="the queues' task queue rate limits and fairness weights on the server"
    )
    actions = lim.add_subparsers(dest="limits_command", required=True, metavar="ACTION")

    p = client_command(
        actions, "apply", "set the declared rate limits and fairness weights (idempotent)"
    )
    p.add_argument("queues", nargs="*", metavar="QUEUE", help="default: every installed queue")
    p.add_argument("--dry-run", action="store_true", help="print the changes, make none")
    p.add_argument(
        "--activity-rate",
        metavar="N",
        help="activity tasks per second for the whole queue (overrides the declaration)",
    )
    p.add_argument(
        "--activity-rate-per-key",
        metavar="N",
        help="activity tasks per second for each fairness key (overrides the declaration)",
    )
    p.add_argument(
        "--weight",
        action="append",
        metavar="KEY=W",
        help="a tenant's fairness weight, on top of the declared ones (repeatable)",
    )
    p.set_defaults(func=_cmd_apply)
    p = client_command(actions, "show", "the task queue configuration the server holds")
    p.add_argument("queues", nargs="*", metavar="QUEUE", help="default: every installed queue")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_show)
