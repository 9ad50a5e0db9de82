"""Shared state: with both orders replicas on the compose PostgreSQL, holds the ledger's
payment writes, starts 12 orders and kills the replica running a charge whose provider side
has committed; every order is then charged exactly once at the provider, the ledger records
one charge each, and the charges in flight ran again on the other replica. Then the stack
recovers to healthy (make scale)."""

from __future__ import annotations

import subprocess

from e2e.harness.checks import check_healthy
from e2e.harness.commands import Failed, run, say, wait_for
from e2e.harness.history import activity_starts, history, hostname, running_activity
from e2e.harness.report import Report
from e2e.harness.stack import PSQL, E2eStack
from e2e.harness.workload import RUN, confirm_order, start_order

TITLE = "kill an orders worker mid-charge (shared PostgreSQL)"


def check(stack: E2eStack, report: Report) -> None:
    """Kill a replica mid-charge, check the charges, then scale back to 2."""
    check_charge_kill(stack, report)
    stack.script("scale", "orders", "2")
    check_healthy(stack, report, "recovered from the charge kill")


def pending_charge(stack: E2eStack, workflow_id: str) -> str | None:
    """The worker (container id prefix) running the order's charge right now, if any."""
    activity = running_activity(stack, workflow_id, "charge_payment")
    return hostname(activity["lastWorkerIdentity"]) if activity else None


def check_charge_kill(stack: E2eStack, report: Report) -> None:
    """Two replicas on the compose PostgreSQL; one killed right after the provider charged."""
    orders = [f"E2E-CHARGE-{i:02d}-{RUN}" for i in range(12)]
    replicas = [c for c in stack.containers("orders") if c["State"]["Running"]]
    # Hold the ledger's payment writes: each charge then stops right after the provider
    # took it (its own transaction, committed) and before the ledger records it.
    (db,) = stack.containers("postgres")
    holder = subprocess.Popen(
        ["docker", "exec", "-i", db["Id"], *PSQL, "-q", "-At"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write("BEGIN;\nLOCK TABLE orders_payments IN EXCLUSIVE MODE;\nSELECT 'locked';\n")
    holder.stdin.flush()
    if holder.stdout.readline().strip() != "locked":
        raise Failed("could not lock orders_payments")
    try:
        for order_id in orders:
            start_order(stack, order_id)
        like = f"E2E-CHARGE-%-{RUN}"

        def victim() -> str | None:
            charged = int(
                stack.psql(
                    f"SELECT count(*) FROM orders_provider_charges WHERE order_id LIKE '{like}'"
                )
            )
            if charged < 2:
                return None
            for order_id in orders:
                host = pending_charge(stack, f"order-{order_id}")
                if host:
                    return host
            return None

        host = wait_for("a charge in flight, the provider's side committed", victim, 90, 1)
        (killed,) = [c for c in replicas if c["Id"].startswith(host)]
        run("docker", "kill", killed["Id"])
        say(f"   killed {killed['Name']} ({host}) between the provider's charge and the ledger")
    finally:
        holder.stdin.write("ROLLBACK;\n")
        holder.stdin.close()
        holder.wait(timeout=30)
    for order_id in orders:
        confirm_order(stack, order_id)
    for order_id in orders:
        stack.fleet("orders", "result", f"order-{order_id}", timeout=240)
    counts = stack.psql(
        "SELECT count(*), count(DISTINCT order_id), min(n), max(n) FROM (SELECT order_id, "
        f"count(*) AS n FROM orders_provider_charges WHERE order_id LIKE '{like}' "
        "GROUP BY order_id) AS per_order"
    ).strip()
    report.check(
        "charge kill: every order charged exactly once at the provider (PostgreSQL)",
        counts == f"{len(orders)}|{len(orders)}|1|1",
        f"orders|distinct|min|max charges: {counts}",
    )
    recorded = stack.psql(
        f"SELECT count(*) FROM orders_events WHERE kind = 'charged' AND order_id LIKE '{like}'"
    ).strip()
    report.check(
        "charge kill: the shared ledger records one charge per order",
        recorded == str(len(orders)),
        f"{recorded} charged events for {len(orders)} orders",
    )
    retried = 0
    for order_id in orders:
        starts = activity_starts(history(stack, f"order-{order_id}"), "charge_payment")
        retried += sum(int(attrs.get("attempt", 1)) > 1 for attrs in starts)
    report.check(
        "charge kill: charges in flight on the killed worker ran again elsewhere",
        retried > 0,
        f"{retried} charge attempts after the first",
    )
