"""Bad input from a client that is not `fleet`: the official `temporal` CLI, as the Web UI, a
Schedule or another language's service would send it. Each malformed start fails its
workflow within seconds with a message naming the field (or, for the wrong number of
arguments, the parameters), with no workflow task failure (no retry loop) and before any
activity runs; a bad update argument is rejected; a signal that does not fit is dropped.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from temporalio.client import Client
from workerkit import discover_queues

from support import WorkerProcess, http_get, temporal_run, temporal_start, workflow_events

# slow: fleet worker processes, driven by the temporal CLI.
pytestmark = pytest.mark.slow

ADDRESS = {"name": "A", "line1": "1 Rd", "city": "C", "postal_code": "1", "country": "GB"}
ORDER: dict[str, Any] = {
    "customer_id": "c",
    "payment_token": "tok_visa",
    "items": [{"sku": "sku-widget", "quantity": 1, "unit_price_cents": 100}],
    "shipping_address": ADDRESS,
}


def order(**changes: Any) -> str:
    return json.dumps({**ORDER, "order_id": f"bad-{uuid.uuid4().hex[:8]}", **changes})


temporal = temporal_run
history = workflow_events


def wait_closed(address: str, workflow_id: str, timeout: float = 15) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = history(address, workflow_id)
        if any("workflowExecutionFailedEventAttributes" in e for e in events):
            return events
        assert not any("workflowTaskFailedEventAttributes" in e for e in events), events
        time.sleep(0.2)
    raise AssertionError(f"{workflow_id} did not fail within {timeout}s: {events}")


@pytest.mark.parametrize(
    ("task_queue", "workflow_type", "raw", "message"),
    [
        (
            "orders-v1",
            "OrderWorkflow",
            '{"order_id": 5}',
            "order_id: expected a string, got the number 5",
        ),
        (
            "orders-v1",
            "OrderWorkflow",
            '"hello"',
            "expected an object (Order), got the string 'hello'",
        ),
        (
            "notifications-v1",
            "NotifyWorkflow",
            "[1,2,3]",
            "expected an object (Notification), got an array",
        ),
        (
            "orders-v1",
            "OrderWorkflow",
            order(items=[{"sku": "sku-widget", "quantity": 1.5, "unit_price_cents": 100}]),
            "items[0].quantity: expected an integer, got the number 1.5",
        ),
        (
            "orders-v1",
            "OrderWorkflow",
            order(items=[{"sku": "sku-widget", "quantity": True, "unit_price_cents": 100}]),
            "items[0].quantity: expected an integer, got a boolean",
        ),
        ("orders-v1", "OrderWorkflow", order(colour="red"), "unknown field 'colour' for Order"),
        (
            "orders-v1",
            "NoSuchWorkflow",
            "{}",
            "queue 'orders' has no workflow 'NoSuchWorkflow'; known workflows: OrderWorkflow",
        ),
        (
            "orders-v1",
            "OrderWorkflow",
            order(confirmation_timeout_seconds=1e300),
            "confirmation_timeout_seconds must be positive and at most",
        ),
    ],
    ids=[
        "wrong-type",
        "a-string",
        "an-array",
        "fraction",
        "boolean",
        "unknown-field",
        "unknown-type",
        "huge-timeout",
    ],
)
def test_a_malformed_start_fails_the_workflow_at_once(
    spawn_worker: Callable[..., WorkerProcess],
    temporal_address: str,
    task_queue: str,
    workflow_type: str,
    raw: str,
    message: str,
) -> None:
    spawn_worker(task_queue.removesuffix("-v1")).wait_ready()
    workflow_id = f"bad-input-{uuid.uuid4().hex[:10]}"
    started = time.monotonic()
    done = temporal_start(temporal_address, task_queue, workflow_type, workflow_id, raw)
    assert done.returncode == 0, done.stderr
    events = wait_closed(temporal_address, workflow_id)
    took = time.monotonic() - started
    (failed,) = [
        e["workflowExecutionFailedEventAttributes"]
        for e in events
        if "workflowExecutionFailedEventAttributes" in e
    ]
    failure = failed["failure"]
    assert message in failure["message"], failure["message"]
    assert failure["applicationFailureInfo"]["nonRetryable"] is True
    assert not any("workflowTaskFailedEventAttributes" in e for e in events)
    assert not any("activityTaskScheduledEventAttributes" in e for e in events)  # nothing charged
    assert took < 15, took


def test_a_bad_update_argument_is_rejected(
    spawn_worker: Callable[..., WorkerProcess], temporal_address: str
) -> None:
    spawn_worker("orders").wait_ready()
    workflow_id = f"bad-update-{uuid.uuid4().hex[:10]}"
    done = temporal_start(temporal_address, "orders-v1", "OrderWorkflow", workflow_id, order())
    assert done.returncode == 0, done.stderr
    rejected = temporal(
        temporal_address,
        "workflow",
        "update",
        "execute",
        "-w",
        workflow_id,
        "--name",
        "change_shipping_address",
        "--input",
        json.dumps({**ADDRESS, "zip": "1"}),
    )
    assert rejected.returncode != 0
    assert "unknown field 'zip' for Address" in rejected.stderr + rejected.stdout
    terminated = temporal(temporal_address, "workflow", "terminate", "-w", workflow_id)
    assert terminated.returncode == 0, terminated.stderr


def test_a_signal_that_does_not_fit_is_counted_and_logged_once(
    spawn_worker: Callable[..., WorkerProcess], temporal_address: str
) -> None:
    worker = spawn_worker("orders")
    worker.wait_ready()
    workflow_id = f"bad-signal-{uuid.uuid4().hex[:10]}"
    args = ["--task-queue", "orders-v1", "--type", "OrderWorkflow", "--workflow-id", workflow_id]
    assert (
        temporal(temporal_address, "workflow", "start", *args, "--input", order()).returncode == 0
    )
    sent = temporal(
        temporal_address,
        "workflow",
        "signal",
        "-w",
        workflow_id,
        "--name",
        "confirm",
        "--input",
        '"yes"',
    )
    assert sent.returncode == 0, sent.stderr  # a signal is fire-and-forget: the sender can't know

    deadline = time.monotonic() + 15
    metric = 'workerkit_signals_dropped_total{signal="confirm",task_queue="orders-v1"} 1.0'
    while metric not in http_get(worker.url("/metrics"))[1]:
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.2)
    dropped = [json.loads(line) for line in worker.log().splitlines() if '"signal dropped' in line]
    assert len(dropped) == 1, dropped
    assert dropped[0]["level"] == "warning" and dropped[0]["signal"] == "confirm"
    assert "Confirmation input is invalid" in dropped[0]["reason"]
    assert dropped[0]["workflow_id"] == workflow_id
    assert "Traceback" not in worker.log()

    # The workflow is unharmed: a good signal confirms it and it completes.
    good = temporal(
        temporal_address,
        "workflow",
        "signal",
        "-w",
        workflow_id,
        "--name",
        "confirm",
        "--input",
        '{"confirmed_by": "cli"}',
    )
    assert good.returncode == 0, good.stderr
    result = temporal(temporal_address, "workflow", "result", "-w", workflow_id)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_nan_from_another_sdk_fails_the_workflow(
    spawn_worker: Callable[..., WorkerProcess], client: Client, temporal_address: str
) -> None:
    # Python's json (as the SDK's default converter uses it) writes float("nan") as NaN.
    spawn_worker("orders").wait_ready()
    workflow_id = f"bad-nan-{uuid.uuid4().hex[:10]}"
    payload = {**json.loads(order()), "confirmation_timeout_seconds": float("nan")}
    await client.start_workflow("OrderWorkflow", payload, id=workflow_id, task_queue="orders-v1")
    events = wait_closed(temporal_address, workflow_id)
    (failed,) = [
        e["workflowExecutionFailedEventAttributes"]["failure"]
        for e in events
        if "workflowExecutionFailedEventAttributes" in e
    ]
    assert "Order input is not valid JSON: NaN is not a number JSON allows" in failed["message"]
    assert not any("activityTaskScheduledEventAttributes" in e for e in events)


# One valid argument of each workflow type: with a second one after it, only the count is
# wrong.
VALID = {
    "OrderWorkflow": order(),
    "NotifyWorkflow": json.dumps(
        {"message_id": "m", "recipient": "u", "subject": "s", "body": "b", "channels": ["email"]}
    ),
    "DigestWorkflow": "{}",
    "BatchIngestWorkflow": json.dumps({"batch_id": "b", "item_count": 2, "chunk_size": 1}),
    "ChunkWorkflow": json.dumps(
        {"batch_id": "b", "chunk_index": 0, "first_item": 0, "item_count": 1}
    ),
    "AgentWorkflow": json.dumps({"task_id": "t", "prompt": "What is 1 + 1?"}),
}
STARTS = [
    (queue.name, queue.task_queue, workflow_type, inputs)
    for queue in discover_queues().values()
    for workflow_type in queue.workflow_types()
    for inputs in ([], [VALID.get(workflow_type, "{}"), '"extra"'])
]


@pytest.mark.parametrize(
    ("queue", "task_queue", "workflow_type", "inputs"),
    STARTS,
    ids=[f"{t}-{len(i)}-args" for _, _, t, i in STARTS],
)
def test_a_start_with_the_wrong_number_of_arguments_fails_at_once(
    spawn_worker: Callable[..., WorkerProcess],
    temporal_address: str,
    queue: str,
    task_queue: str,
    workflow_type: str,
    inputs: list[str],
) -> None:
    """No argument, or one too many, as the temporal CLI sends them: the workflow fails
    within seconds naming its parameters, instead of a TypeError retried forever."""
    worker = spawn_worker(queue)
    worker.wait_ready()
    workflow_id = f"arity-{uuid.uuid4().hex[:10]}"
    done = temporal_start(temporal_address, task_queue, workflow_type, workflow_id, inputs)
    assert done.returncode == 0, done.stderr
    events = wait_closed(temporal_address, workflow_id)
    (failed,) = [
        e["workflowExecutionFailedEventAttributes"]
        for e in events
        if "workflowExecutionFailedEventAttributes" in e
    ]
    failure = failed["failure"]
    assert failure["message"].startswith(f"{workflow_type} takes ("), failure["message"]
    assert f"1 required, got {len(inputs)} argument(s)" in failure["message"], failure["message"]
    assert failure["applicationFailureInfo"]["type"] == "InvalidInput"
    assert failure["applicationFailureInfo"]["nonRetryable"] is True
    assert not any("activityTaskScheduledEventAttributes" in e for e in events)
    # The worker's log says so, once, as of any failed workflow.
    deadline = time.monotonic() + 10
    while workflow_id not in worker.log():
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.1)
    said = [json.loads(x) for x in worker.log().splitlines() if workflow_id in x]
    assert [(e["msg"], e["error_type"]) for e in said] == [("workflow failed", "InvalidInput")]


async def test_signals_and_updates_with_the_wrong_number_of_arguments(
    spawn_worker: Callable[..., WorkerProcess], temporal_address: str
) -> None:
    """A signal is dropped with one warning, an update is refused to its caller; the
    workflow is unharmed and completes."""
    worker = spawn_worker("orders")
    worker.wait_ready()
    workflow_id = f"arity-handlers-{uuid.uuid4().hex[:10]}"
    done = temporal_start(temporal_address, "orders-v1", "OrderWorkflow", workflow_id, order())
    assert done.returncode == 0, done.stderr
    target = ["-w", workflow_id]

    two = ["--input", '{"confirmed_by": "cli"}', "--input", '"again"']
    sent = temporal(temporal_address, "workflow", "signal", *target, "--name", "confirm", *two)
    assert sent.returncode == 0, sent.stderr  # fire-and-forget: the sender can't know
    deadline = time.monotonic() + 15
    while '"signal dropped: wrong number of arguments"' not in worker.log():
        assert time.monotonic() < deadline, worker.log()
        await asyncio.sleep(0.2)
    (dropped,) = [json.loads(x) for x in worker.log().splitlines() if '"signal dropped' in x]
    assert dropped["level"] == "warning" and dropped["signal"] == "confirm"
    assert dropped["reason"] == "confirm takes (confirmation): 1 required, got 2", dropped

    updated = temporal(
        temporal_address, "workflow", "update", "execute", *target,
        "--name", "change_shipping_address",
    )  # fmt: skip
    assert updated.returncode != 0
    assert "update change_shipping_address takes (address): 1 required, got 0" in (
        updated.stderr + updated.stdout
    ), updated

    # Nothing of it reached the workflow: a good signal confirms it and it completes.
    good = temporal(
        temporal_address, "workflow", "signal", *target, "--name", "confirm",
        "--input", '{"confirmed_by": "cli"}',
    )  # fmt: skip
    assert good.returncode == 0, good.stderr
    result = temporal(temporal_address, "workflow", "result", *target)
    assert result.returncode == 0, result.stdout + result.stderr
    events = history(temporal_address, workflow_id)
    assert not any("workflowTaskFailedEventAttributes" in e for e in events)
    assert "Traceback" not in worker.log()
