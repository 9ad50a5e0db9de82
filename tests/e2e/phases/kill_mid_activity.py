"""Kills (`docker kill`) the orders container running a slow shipping activity: the workflow
still completes, its activity retried on the other replica. Then the stack recovers to
healthy (make scale starts the killed container again)."""

from __future__ import annotations

import json
import time
from typing import Any

from e2e.harness.checks import check_healthy, check_targets
from e2e.harness.commands import run, say, wait_for
from e2e.harness.history import activity_starts, history, hostname, running_activity
from e2e.harness.report import Report
from e2e.harness.stack import E2eStack
from e2e.harness.workload import RUN, confirm_order, start_order

TITLE = "kill an orders worker mid-workflow"


def check(stack: E2eStack, report: Report) -> None:
    """Kill the replica shipping an order; the other finishes it; then scale back to 2."""
    replicas = [c for c in stack.containers("orders") if c["State"]["Running"]]
    order_id = f"E2E-KILL-{RUN}"
    workflow_id = f"order-{order_id}"
    # 24 units at 0.5 s each (compose.e2e.yml): a 12 s shipping activity, heartbeating.
    start_order(stack, order_id, 24)
    confirm_order(stack, order_id)
    activity = wait_for(
        "ship_order running and heartbeating", lambda: pending_ship(stack, workflow_id), 60, 0.5
    )
    host = hostname(activity["lastWorkerIdentity"])
    (victim,) = [c for c in replicas if c["Id"].startswith(host)]
    survivor = next(c for c in replicas if c["Id"] != victim["Id"])
    run("docker", "kill", victim["Id"])
    killed_at = time.monotonic()
    say(f"   killed {victim['Name']} ({host}) mid-activity (attempt {activity.get('attempt', 1)})")

    result = json.loads(stack.fleet("orders", "result", workflow_id, timeout=180, via=survivor))
    recovery = time.monotonic() - killed_at
    report.check(
        "kill: the order completes after its worker is killed mid-activity",
        str(result.get("tracking_number", "")).startswith("trk-"),
        f"{recovery:.1f}s after the kill",
    )
    ship_started = activity_starts(history(stack, workflow_id), "ship_order")
    last = ship_started[-1] if ship_started else {}
    report.check(
        "kill: shipping was retried (attempt > 1) by another worker",
        int(last.get("attempt", 1)) > 1 and hostname(last.get("identity", "")) != host,
        f"attempt {last.get('attempt')} on {hostname(last.get('identity', '?'))}",
    )

    stack.script("scale", "orders", "2")
    check_healthy(stack, report, "recovered")
    check_targets(stack, report, "recovered")


def pending_ship(stack: E2eStack, workflow_id: str) -> dict[str, Any] | None:
    """The order's shipping activity, once it runs and has heartbeated."""
    activity = running_activity(stack, workflow_id, "ship_order")
    return activity if activity and activity.get("heartbeatDetails") else None
