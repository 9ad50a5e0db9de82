"""Deploys a changed orders image (a copy of the sources with an incompatible change to
OrderWorkflow, which is PINNED) with `make deploy` while three orders wait for their
confirmation: the new build runs beside the old one and becomes current through the replay
gate; the waiting orders complete on the old build, a new order on the new one; no workflow
failed and no workflow task failed; `make retire` then removes the drained old build's
containers, and Prometheus scrapes the new ones as queue orders."""

from __future__ import annotations

import json

from compose_stack.containers import queue_of, service_of

from e2e.harness.checks import check_targets
from e2e.harness.commands import Failed
from e2e.harness.history import history
from e2e.harness.report import Report
from e2e.harness.sources import changed_tree
from e2e.harness.stack import E2eStack
from e2e.harness.workload import RUN, await_confirmation, confirm_order, order, start_order

TITLE = "deploy a changed orders image beside the running one (make deploy)"
# An incompatible change to OrderWorkflow (PINNED): a timer before its first step. Orders in
# flight must finish on the build that started them; new orders run the new code.
TIMER_FIRST = "        await workflow.sleep(timedelta(milliseconds=1))  # the e2e's changed build\n"


def build_of(stack: E2eStack, workflow_id: str) -> str:
    """The build id an execution is pinned to (or ran its last task on)."""
    described = stack.temporal("workflow", "describe", "-w", workflow_id)
    info = described.get("workflowExecutionInfo", described)
    versioning = info.get("versioningInfo", {})
    version = versioning.get("deploymentVersion", {})
    return str(version.get("buildId", ""))


def check(stack: E2eStack, report: Report) -> None:
    """make deploy of a changed orders image: pinned orders finish on the old build."""
    pinned = [f"E2E-PIN-{i}-{RUN}" for i in range(3)]
    for order_id in pinned:
        start_order(stack, order_id)
    for order_id in pinned:
        await_confirmation(stack, order_id)
    old_build = build_of(stack, f"order-{pinned[0]}")
    before = {c["Id"] for c in stack.containers("orders") if c["State"]["Running"]}

    # The rollout's steps, shortened; no order arrives meanwhile, so no step waits for data.
    deployed = stack.make(
        "deploy",
        "QUEUE=orders",
        f"CONTEXT={changed_tree('changed', TIMER_FIRST)}",
        "STEPS=50,100",
        "PAUSE=3s",
        "MIN_EXECUTIONS=0",
    )
    if deployed.returncode != 0:
        raise Failed(f"make deploy exited {deployed.returncode}: {deployed.stderr[-2000:]}")
    output = deployed.stdout + deployed.stderr
    report.check(
        "deploy: the rollout gated, ramped to 50%, made the build current and baked it",
        all(
            step in output
            for step in ("gate: passed", "step 1 (50%): passed", "bake (100%): passed")
        ),
        "gate, 50%, 100%, bake",
    )
    new = [
        c
        for c in stack.workers()
        if queue_of(c) == "orders" and service_of(c) != "orders" and c["State"]["Running"]
    ]
    if not new:
        raise Failed("make deploy started no new orders build")
    via = new[0]
    state = json.loads(stack.fleet("orders", "deploy", "status", "orders", "--json", via=via))
    builds = {b["build_id"]: b["status"] for b in state["builds"]}
    new_build = state["current_build_id"]
    report.check(
        "deploy: the changed build is current; the old one drains beside it",
        new_build != old_build
        and builds.get(old_build) == "draining"
        and all(c["State"]["Running"] for c in stack.containers("orders") if c["Id"] in before),
        f"{old_build} -> {new_build} ({len(new)} new container(s))",
    )
    check_targets(stack, report, "deploy")

    fresh = f"E2E-NEW-{RUN}"
    stack.fleet("orders", "start", "orders", "OrderWorkflow", order(fresh, 1), via=via)
    for order_id in [*pinned, fresh]:
        confirm_order(stack, order_id, via=via)
    results = {
        oid: json.loads(stack.fleet("orders", "result", f"order-{oid}", timeout=180, via=via))
        for oid in [*pinned, fresh]
    }
    ran_on = {oid: build_of(stack, f"order-{oid}") for oid in results}
    report.check(
        "deploy: orders in flight completed on the build that started them",
        all(str(results[o].get("tracking_number", "")).startswith("trk-") for o in pinned)
        and all(ran_on[o] == old_build for o in pinned),
        f"{len(pinned)} pinned orders on {old_build}",
    )
    report.check(
        "deploy: a new order ran on the new build",
        str(results[fresh].get("tracking_number", "")).startswith("trk-")
        and ran_on[fresh] == new_build,
        f"{fresh} on {ran_on[fresh]}",
    )
    failed = stack.temporal("workflow", "count", "--query", "ExecutionStatus = 'Failed'")
    task_failures = 0
    for oid in results:
        events = history(stack, f"order-{oid}")
        task_failures += sum(1 for e in events if "workflowTaskFailedEventAttributes" in e)
    report.check(
        "deploy: 0 failed workflows, 0 workflow task failures",
        int(failed.get("count", 0) or 0) == 0 and task_failures == 0,
        f"failed {failed.get('count', 0)}, workflow task failures {task_failures}",
    )

    retired = stack.make("retire", "QUEUE=orders", "DRAIN_WAIT=120s")
    left = [c for c in stack.workers() if queue_of(c) == "orders" and c["State"]["Running"]]
    report.check(
        "deploy: the drained old build is retired, only the new one runs",
        retired.returncode == 0
        and not any(c["Id"] in before for c in left)
        and {service_of(c) for c in left} == {service_of(via)},
        f"{len(left)} orders container(s) of {new_build}",
    )
    check_targets(stack, report, "retired")
