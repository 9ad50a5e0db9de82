"""Every worker container is healthy, runs as uid 10001 on a read-only root filesystem and
under compose's memory limit (which it exports, beside its RSS and threads); every image
carries the OCI labels; Prometheus has exactly the worker containers as targets of job
temporal-workers, every one up; the <queue>-limits one-shots set each task queue's declared
rate limits on the server."""

from __future__ import annotations

import json
from typing import Any

from e2e.harness.checks import check_healthy, check_targets
from e2e.harness.commands import run, wait_for
from e2e.harness.report import Report
from e2e.harness.stack import E2eStack

TITLE = "every worker container healthy, hardened, scraped and within its memory limit"
# docker-compose.yml's default mem_limit.
MEMORY_LIMIT = 512 * 2**20


def check(stack: E2eStack, report: Report) -> None:
    """Check the containers, the images and the scrape targets."""
    check_healthy(stack, report, "stack")
    check_images(stack, report)
    check_targets(stack, report, "stack")
    check_memory_limits(stack, report)
    check_task_queue_limits(stack, report)


def check_task_queue_limits(stack: E2eStack, report: Report) -> None:
    """What orders declares (500 activity tasks a second, its fairness key) is on the server,
    set by its one-shot before anything ran `fleet limits apply` by hand."""
    rows = json.loads(stack.fleet("orders", "limits", "show", "orders", "--json"))
    activity = next(r for r in rows if r["type"] == "activity")
    report.check(
        "the orders-limits one-shot set the declared task queue config (fleet limits show)",
        activity["rate"] == activity["declared"]["rate"] == 500.0
        and activity["fairness_key"] == "customer_id",
        json.dumps(activity),
    )


def check_images(stack: E2eStack, report: Report) -> None:
    """Worker containers: non-root, read-only root filesystem; images: OCI labels."""
    workers = stack.workers()
    loose = [
        c["Name"]
        for c in workers
        if c["Config"]["User"] != "10001:10001" or not c["HostConfig"]["ReadonlyRootfs"]
    ]
    report.check(
        "workers run as uid 10001 on a read-only root filesystem",
        bool(workers) and not loose,
        str(loose) if loose else f"{len(workers)} containers",
    )
    images = sorted({c["Config"]["Image"] for c in stack.containers()})
    wanted = ("title", "description", "source", "version", "revision", "licenses")
    unlabelled = []
    for image in images:
        labels = json.loads(
            run("docker", "image", "inspect", "-f", "{{json .Config.Labels}}", image).stdout
        )
        missing = [w for w in wanted if f"org.opencontainers.image.{w}" not in (labels or {})]
        if missing:
            unlabelled.append(f"{image}: {missing}")
    report.check(
        "every image carries the OCI labels",
        not unlabelled,
        str(unlabelled) if unlabelled else f"{len(images)} images",
    )


def check_memory_limits(stack: E2eStack, report: Report) -> None:
    """Every worker container runs under compose's memory limit and exports it, beside its
    RSS and threads: what the memory alerts and the queue dashboard read."""
    query = (
        'workerkit_memory_limit_bytes{job="temporal-workers"} '
        'and on (instance) workerkit_process_threads{job="temporal-workers"} > 4 '
        'and on (instance) process_resident_memory_bytes{job="temporal-workers"} '
        f"< {MEMORY_LIMIT}"
    )
    running = sum(1 for c in stack.workers() if c["State"]["Running"])

    def exported() -> list[Any] | None:
        found = stack.promql(query)
        return found if len(found) == running else None

    series = wait_for("every worker's memory limit, threads and RSS", exported, 60, every=2)
    limits = {float(s["value"][1]) for s in series}
    report.check(
        "every worker exports its container's memory limit, threads and RSS (Prometheus)",
        limits == {float(MEMORY_LIMIT)},
        f"{len(series)} workers, limits {sorted(limits)}",
    )
