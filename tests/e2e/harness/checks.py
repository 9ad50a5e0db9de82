"""Checks several phases repeat: every worker container healthy, and scraped by Prometheus."""

from __future__ import annotations

from compose_stack.containers import health_of, queue_of

from .commands import Failed, wait_for
from .report import Report
from .stack import Container, E2eStack


def check_healthy(stack: E2eStack, report: Report, what: str) -> None:
    """Every worker container is healthy now (``what`` names the moment in the report)."""
    workers = stack.workers()
    unhealthy = [(c["Name"], health_of(c)) for c in workers if health_of(c) != "healthy"]
    report.check(
        f"{what}: every worker container healthy",
        bool(workers) and not unhealthy,
        f"{len(workers)} containers" if not unhealthy else str(unhealthy),
    )


def worker_targets(stack: E2eStack) -> dict[tuple[str, str], str]:
    """Prometheus's targets of job temporal-workers: (queue, ip) -> health."""
    data = stack.prometheus("/api/v1/targets?state=active")
    return {
        (t["labels"].get("queue", ""), t["labels"]["instance"].rsplit(":", 1)[0]): t["health"]
        for t in data["activeTargets"]
        if t["labels"].get("job") == "temporal-workers"
    }


def ip_of(container: Container) -> str:
    """The container's address on its (first) network."""
    networks = container["NetworkSettings"]["Networks"]
    return next(iter(networks.values()))["IPAddress"] if networks else ""


def check_targets(stack: E2eStack, report: Report, what: str) -> None:
    """Prometheus scrapes exactly the running worker containers, each as its queue, all up.

    Its service discovery lags the containers, so this waits for it (90 s).
    """
    expected = {(queue_of(c), ip_of(c)) for c in stack.workers() if c["State"]["Running"]}

    def converged() -> dict[tuple[str, str], str] | None:
        targets = worker_targets(stack)
        if set(targets) == expected and all(h == "up" for h in targets.values()):
            return targets
        return None

    try:
        targets = wait_for("Prometheus targets", converged, 90, every=2)
    except Failed:
        raise Failed(
            f"{what}: Prometheus targets {worker_targets(stack)} != containers {expected}"
        ) from None
    queues = sorted({q for q, _ in targets})
    report.check(
        f"{what}: Prometheus scrapes every worker container, all up",
        True,
        f"{len(targets)} targets: {', '.join(queues)}",
    )
