"""Launch helpers for callers of the orders queue."""

from __future__ import annotations

from temporalio.client import Client
from workerkit import Launched, launch

from orders.models import Order, OrderResult
from orders.queue import QUEUE
from orders.workflows import OrderWorkflow


async def start_order(client: Client, order: Order) -> Launched[OrderResult]:
    """Start the order's workflow; a second call for the same order returns the first run."""
    return await launch(
        client,
        QUEUE,
        OrderWorkflow.run,
        order,
        memo={
            "customer_id": order.customer_id,
            "total_cents": order.total_cents,
            "items": len(order.items),
        },
    )
