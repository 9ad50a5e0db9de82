"""Scales orders to 2 (`make scale`): both replicas are healthy, scraped, and polling (the
server lists a poller from each container, and each reports temporal_num_pollers > 0)."""

from __future__ import annotations

from typing import Any

from e2e.harness.checks import check_healthy, check_targets
from e2e.harness.commands import wait_for
from e2e.harness.history import hostname
from e2e.harness.report import Report
from e2e.harness.stack import E2eStack

TITLE = "scale orders to 2"


def check(stack: E2eStack, report: Report) -> None:
    """Scale orders to 2, then check both replicas run, are scraped and poll."""
    stack.script("scale", "orders", "2")
    replicas = [c for c in stack.containers("orders") if c["State"]["Running"]]
    report.check("scale: 2 orders replicas running", len(replicas) == 2, str(len(replicas)))
    check_healthy(stack, report, "scale")
    check_targets(stack, report, "scale")
    short_ids = {c["Id"][:12] for c in replicas}

    def polling_hosts() -> set[str] | None:
        # --legacy-mode lists every poller, versioned ones included (the workers are).
        described = stack.temporal(
            "task-queue", "describe", "--task-queue", "orders-v1", "--legacy-mode"
        )
        hosts = {hostname(p.get("identity", "")) for p in pollers(described)}
        return hosts if short_ids <= hosts else None

    hosts = wait_for("both orders replicas poll orders-v1", polling_hosts, 60, every=2)
    report.check(
        "scale: both orders replicas poll orders-v1 (server's poller list)",
        True,
        f"pollers on {sorted(short_ids & hosts)}",
    )

    query = 'max by (instance) (temporal_num_pollers{job="temporal-workers",queue="orders"}) > 0'

    def polling_instances() -> int | None:
        n = len(stack.promql(query))
        return n if n == 2 else None

    n = wait_for("temporal_num_pollers > 0 on both orders replicas", polling_instances, 60, 2)
    report.check("scale: temporal_num_pollers > 0 on both replicas (Prometheus)", True, f"{n}")


def pollers(described: Any) -> list[dict[str, Any]]:
    """Every poller entry of `temporal task-queue describe -o json`, whatever its nesting."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pollers" and isinstance(value, list):
                    found.extend(p for p in value if isinstance(p, dict))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(described)
    return found
