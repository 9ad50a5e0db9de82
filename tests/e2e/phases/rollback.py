"""Deploys a build that fails every order (`make deploy`) while orders arrive: its rollout is
rolled back at its first step, make fails naming the step, the measure, its value and its
limit (the script exits 3); the running build stays current and the failing build's
containers are removed once drained."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import threading

from compose_stack.containers import queue_of, service_of

from e2e.harness.commands import Failed
from e2e.harness.report import Report
from e2e.harness.sources import changed_tree
from e2e.harness.stack import E2eStack
from e2e.harness.workload import RUN, order

TITLE = "a build that fails its orders is rolled back (make deploy)"
# A build that fails every order at once: a rollout of it must be rolled back at its first step.
REFUSE_FIRST = (
    '        raise ApplicationError("this build refuses every order", non_retryable=True)\n'
)


def check(stack: E2eStack, report: Report) -> None:
    """make deploy of a build that fails every order, with orders arriving: rolled back at its
    first step, its containers removed once drained, the running build current throughout."""
    # The current build's container (its compose service is orders-<build id> by now).
    via = next(c for c in stack.workers() if queue_of(c) == "orders" and c["State"]["Running"])
    status = json.loads(stack.fleet("orders", "deploy", "status", "orders", "--json", via=via))
    current = status["current_build_id"]
    stop = threading.Event()

    def orders_arrive() -> None:
        n = 0
        while not stop.is_set():
            with contextlib.suppress(Failed, subprocess.TimeoutExpired):
                new_order = order(f"E2E-RB-{n}-{RUN}", 1)
                stack.fleet("orders", "start", "orders", "OrderWorkflow", new_order, via=via)
            n += 1
            stop.wait(0.5)

    arriving = threading.Thread(target=orders_arrive, daemon=True)
    arriving.start()
    try:
        deployed = stack.make(
            "deploy",
            "QUEUE=orders",
            f"CONTEXT={changed_tree('failing', REFUSE_FIRST)}",
            "STEPS=50,100",
            "PAUSE=30s",
            "MIN_EXECUTIONS=3",
            "DRAIN_WAIT=120s",
        )
    finally:
        stop.set()
        arriving.join(timeout=60)
    output = re.sub(r"\x1b\[[0-9;]*m", "", deployed.stdout + deployed.stderr)
    verdict = next((line for line in output.splitlines() if "rolled back:" in line), "")
    report.check(
        "rollback: make deploy fails (its script exits 3), naming the step, the measure, its "
        "value and its limit",
        deployed.returncode != 0
        and "] Error 3" in output  # make reports its recipe's exit code
        and "step 1 (50%)" in verdict
        and "failure_ratio" in verdict,
        verdict.split("[deploy]")[-1].strip()[:160],
    )
    state = json.loads(stack.fleet("orders", "deploy", "status", "orders", "--json", via=via))
    report.check(
        "rollback: the running build stayed current, nothing ramps",
        state["current_build_id"] == current and state["ramping_build_id"] is None,
        f"current {state['current_build_id']}",
    )
    left = {
        service_of(c) for c in stack.workers() if queue_of(c) == "orders" and c["State"]["Running"]
    }
    builds = {b["build_id"]: b["status"] for b in state["builds"] if b["build_id"] != current}
    report.check(
        "rollback: the failing build's containers are removed once drained",
        left == {f"orders-{current}"} and "removing orders-" in output,
        f"running: {', '.join(sorted(left))}; other builds: {builds}",
    )
