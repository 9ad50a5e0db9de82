"""Runs a workflow on every queue through the `fleet` CLI inside the worker containers,
against the containerized server, and checks each result."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from compose_stack.containers import service_of

from e2e.harness.commands import say
from e2e.harness.report import Report
from e2e.harness.stack import E2eStack
from e2e.harness.workload import RUN, confirm_order, start_order

TITLE = "a workflow on every queue"


def check(stack: E2eStack, report: Report) -> None:
    """Drive each queue's workflow (a queue without one is named, not failed)."""
    queues = sorted({service_of(c) for c in stack.workers()})
    for queue in queues:
        if queue in WORKFLOWS:
            WORKFLOWS[queue](stack, report)
        else:
            say(f"   --  {queue}: no workflow to drive (add one to WORKFLOWS)")


def check_orders(stack: E2eStack, report: Report) -> None:
    """An order, confirmed by signal, is charged and shipped."""
    order_id = f"E2E-{RUN}"
    started = json.loads(start_order(stack, order_id, 2))
    report.check("orders: started", started["started"], started["workflow_id"])
    confirm_order(stack, order_id)
    result = json.loads(stack.fleet("orders", "result", f"order-{order_id}"))
    report.check(
        "orders: OrderWorkflow completed",
        str(result.get("tracking_number", "")).startswith("trk-")
        and result.get("charged_cents") == 2500,
        f"tracking {result.get('tracking_number')}",
    )


def start_and_wait(stack: E2eStack, queue: str, workflow: str, arg: dict[str, Any]) -> Any:
    """Start ``workflow`` on ``queue`` and return its result."""
    return json.loads(stack.fleet(queue, "start", queue, workflow, json.dumps(arg), "--wait"))


def check_notifications(stack: E2eStack, report: Report) -> None:
    """A message goes out on both its channels."""
    result = start_and_wait(
        stack,
        "notifications",
        "NotifyWorkflow",
        {
            "message_id": f"e2e-{RUN}",
            "recipient": "user-42",
            "subject": "Your order shipped",
            "body": "It is on its way.",
            "channels": ["email", "push"],
        },
    )
    channels = sorted(d["channel"] for d in result["deliveries"])
    report.check(
        "notifications: NotifyWorkflow completed", channels == ["email", "push"], str(channels)
    )


def check_ingest(stack: E2eStack, report: Report) -> None:
    """A batch of 20 items, in child workflows of 5, is accepted whole."""
    result = start_and_wait(
        stack,
        "ingest",
        "BatchIngestWorkflow",
        {
            "batch_id": f"e2e-{RUN}",
            "item_count": 20,
            "chunk_size": 5,
            "max_concurrent_children": 2,
        },
    )
    accepted = result["totals"]["accepted"]
    report.check(
        "ingest: BatchIngestWorkflow completed", accepted == 20, f"{accepted} of 20 accepted"
    )


def check_agent(stack: E2eStack, report: Report) -> None:
    """The agent answers arithmetic with its calculator tool."""
    result = start_and_wait(
        stack,
        "agent",
        "AgentWorkflow",
        {"task_id": f"e2e-{RUN}", "prompt": "What is 12 * (3 + 4) - 5?"},
    )
    report.check(
        "agent: AgentWorkflow completed",
        result["answer"] == "12 * (3 + 4) - 5 = 79.",
        repr(result["answer"]),
    )


# The queue each check drives; a queue added without one is reported by check().
WORKFLOWS: dict[str, Callable[[E2eStack, Report], None]] = {
    "orders": check_orders,
    "notifications": check_notifications,
    "ingest": check_ingest,
    "agent": check_agent,
}
