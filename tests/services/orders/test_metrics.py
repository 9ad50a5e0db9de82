"""The orders queue's own metrics (``orders.metrics``), as its worker process serves them.

The worker keeps no workflow in its cache, so every workflow task replays the history from
its start: a recording the replay repeated would count twice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from temporalio.client import Client, WorkflowFailureError

from orders.models import Confirmation, Order
from orders.workflows import OrderWorkflow

from support import WorkerProcess, http_get

pytestmark = pytest.mark.slow


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of the one series of ``name`` whose labels include ``labels``."""
    found = [
        float(value)
        for series, value in re.findall(rf"^({name}\{{[^}}]*\}}) (\S+)$", metrics, re.M)
        if all(f'{k}="{v}"' in series for k, v in labels.items())
    ]
    assert len(found) <= 1, f"several series of {name} match {labels}"
    return found[0] if found else None


def scrape_until(worker: WorkerProcess, name: str, **labels: str) -> str:
    deadline = time.monotonic() + 20
    while True:
        metrics = http_get(worker.url("/metrics"))[1]
        if sample(metrics, name, **labels) is not None or time.monotonic() > deadline:
            return metrics
        time.sleep(0.5)


async def test_recorded_once_in_declared_buckets_with_the_queues_labels(
    spawn_worker: Callable[..., WorkerProcess],
    client: Client,
    make_order: Callable[..., Order],
) -> None:
    worker = spawn_worker(
        "orders",
        env={"WORKER_MAX_CACHED_WORKFLOWS": "0", "ORDERS_PACK_SECONDS_PER_ITEM": "0.01"},
    )
    worker.wait_ready()
    shipped, rejected = make_order(), make_order()
    for order, approved in ((shipped, True), (rejected, False)):
        handle = await client.start_workflow(
            OrderWorkflow.run, order, id=f"order-{order.order_id}", task_queue="orders-v1"
        )
        await handle.signal(OrderWorkflow.confirm, Confirmation("test", approved=approved))
        if approved:
            await handle.result()
        else:
            with pytest.raises(WorkflowFailureError):
                await handle.result()

    value = "orders_value_cents"
    metrics = scrape_until(worker, f"{value}_count", outcome="failed")
    ours = {"namespace": "default", "task_queue": "orders-v1", "workflow_type": "OrderWorkflow"}
    # 6,500 cents each (make_order): in the declared bucket 10,000, not in 5,000.
    assert sample(metrics, f"{value}_count", outcome="completed", **ours) == 1
    assert sample(metrics, f"{value}_bucket", outcome="completed", le="5000") == 0
    assert sample(metrics, f"{value}_bucket", outcome="completed", le="10000") == 1
    assert sample(metrics, f"{value}_sum", outcome="failed") == 6500
    # The rejected order undid its charge, then its reservation, in two workflow tasks: the
    # second replayed the first's recording without counting it again.
    for step in ("refund_payment", "release_inventory"):
        counted = sample(metrics, "orders_compensations_total", step=step, result="undone")
        assert counted == 1, (step, counted)
    assert "metric orders_" not in worker.log(), "a recording was dropped"
