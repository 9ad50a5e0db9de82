"""launch(): typed by the workflow's run method (or named by its type), idempotent by id."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client
from workerkit import UnknownWorkflowError, get_queue, launch

from notifications.models import Notification
from notifications.workflows import NotifyWorkflow
from orders.models import Address, LineItem, Order
from orders.workflows import OrderWorkflow


def an_order() -> Order:
    address = Address("Ada Lovelace", "12 St James's Sq", "London", "SW1Y 4JH", "GB")
    return Order(
        f"launch-{uuid.uuid4().hex[:10]}", "c", [LineItem("sku-widget", 1, 1)], address, "t"
    )


async def test_the_run_method_and_the_type_name_start_the_same_execution(client: Client) -> None:
    queue, order = get_queue("orders"), an_order()
    # No worker polls the queue here: the execution waits for one, which is all this needs.
    typed = await launch(client, queue, OrderWorkflow.run, order)
    assert typed.started and typed.workflow_id == f"order-{order.order_id}"
    named = await launch(client, queue, "OrderWorkflow", order)
    assert not named.started and named.run_id == typed.run_id
    await typed.handle.terminate("test done")


async def test_a_method_the_queue_does_not_register_is_refused(client: Client) -> None:
    queue = get_queue("orders")
    note = Notification("m-1", "user-1", "body", ["email"])
    with pytest.raises(UnknownWorkflowError, match="no workflow 'NotifyWorkflow'; known workflows"):
        await launch(client, queue, NotifyWorkflow.run, note)

    with pytest.raises(UnknownWorkflowError, match=r"no workflow 'NotAWorkflow\.run'"):
        await launch(client, queue, NotAWorkflow.run, an_order())


class NotAWorkflow:
    async def run(self, order: Order) -> None:
        """A run method whose class is not declared with @workflow.defn."""
