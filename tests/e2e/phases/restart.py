"""Crashes a worker (SIGKILL to its process, not through Docker): the restart policy brings it
back, healthy and scraped."""

from __future__ import annotations

import os
import signal
from typing import Any

from compose_stack.containers import health_of

from e2e.harness.checks import check_targets
from e2e.harness.commands import wait_for
from e2e.harness.report import Report
from e2e.harness.stack import E2eStack

TITLE = "crash a worker: the restart policy"


def check(stack: E2eStack, report: Report) -> None:
    """A worker process that dies (not stopped through Docker) is restarted and gets healthy."""
    (container,) = stack.containers("notifications")
    before = int(container["RestartCount"])
    try:
        os.kill(int(container["State"]["Pid"]), signal.SIGKILL)
        how = "SIGKILL to its process"
    except PermissionError:
        stack.exec(container, "kill", "-TERM", "1")
        how = "SIGTERM inside the container"

    def restarted() -> dict[str, Any] | None:
        (now,) = stack.containers("notifications")
        return now if int(now["RestartCount"]) > before and health_of(now) == "healthy" else None

    now = wait_for("the crashed worker restarted and healthy", restarted, 120, every=1)
    report.check(
        "restart: a crashed worker is restarted (unless-stopped) and healthy again",
        True,
        f"{how}; restarts {before} -> {now['RestartCount']}",
    )
    check_targets(stack, report, "restart")
