"""What the phases start: this run's id (in every workflow id), orders and their
confirmation."""

from __future__ import annotations

import json
import uuid

from .commands import wait_for
from .stack import Container, E2eStack

# In every workflow id the run starts, so a run never meets an earlier run's executions.
RUN = uuid.uuid4().hex[:8]
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James Sq",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}


def order(order_id: str, quantity: int) -> str:
    """OrderWorkflow's argument: ``quantity`` widgets at 12.50 (JSON)."""
    return json.dumps(
        {
            "order_id": order_id,
            "customer_id": "cust-e2e",
            "payment_token": "tok_visa",
            "items": [{"sku": "sku-widget", "quantity": quantity, "unit_price_cents": 1250}],
            "shipping_address": ADDRESS,
        }
    )


def start_order(stack: E2eStack, order_id: str, quantity: int = 1) -> str:
    """Start OrderWorkflow for ``order_id`` through an orders container; `fleet start`'s
    output."""
    return stack.fleet("orders", "start", "orders", "OrderWorkflow", order(order_id, quantity))


def await_confirmation(stack: E2eStack, order_id: str, via: Container | None = None) -> None:
    """Wait (60 s) until the order waits for its confirmation, asking through ``via``."""
    workflow_id = f"order-{order_id}"
    wait_for(
        f"{workflow_id} awaiting confirmation",
        lambda: (
            json.loads(stack.fleet("orders", "query", workflow_id, "status", via=via))["stage"]
            == "awaiting_confirmation"
        ),
        60,
        every=0.5,
    )


def confirm_order(stack: E2eStack, order_id: str, via: Container | None = None) -> None:
    """Once the order waits for it, send its confirmation signal (through ``via``)."""
    await_confirmation(stack, order_id, via)
    workflow_id = f"order-{order_id}"
    stack.fleet("orders", "signal", workflow_id, "confirm", '{"confirmed_by": "e2e"}', via=via)
