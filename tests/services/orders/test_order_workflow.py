"""The order saga on a real Temporal server: happy path, compensation, signals, updates."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError

from orders.client import start_order
from orders.ledger import Ledger
from orders.models import Address, Confirmation, LineItem, Order, OrderResult, Stage
from orders.workflows import OrderWorkflow

from services.orders.stages import wait_for_stage
from support import RecordHistory

pytestmark = pytest.mark.usefixtures("orders_worker")

MakeOrder = Callable[..., Order]


async def failure_of(handle: WorkflowHandle[Any, Any]) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def test_happy_path_ships_and_notifies(
    client: Client, ledger: Ledger, make_order: MakeOrder, record_history: RecordHistory
) -> None:
    order = make_order()
    widgets_before = ledger.available("sku-widget")
    launched = await start_order(client, order)
    assert launched.started and launched.workflow_id == f"order-{order.order_id}"
    await wait_for_stage(launched.handle, Stage.AWAITING_CONFIRMATION)
    await launched.handle.signal(OrderWorkflow.confirm, Confirmation("ops@example.com"))

    result: OrderResult = await client.get_workflow_handle_for(
        OrderWorkflow.run, launched.workflow_id
    ).result()
    assert result.charged_cents == 2 * 1250 + 4000
    assert result.tracking_number.startswith("trk-")
    assert ledger.events(order.order_id) == [
        "reserved",
        "screened",
        "charged",
        "shipped",
        "notified:shipped",
    ]
    assert ledger.available("sku-widget") == widgets_before - 2
    status = await launched.handle.query(OrderWorkflow.status)
    assert status.stage == Stage.COMPLETED and status.confirmed
    await record_history("orders", "happy_path", launched.handle)


async def test_declined_payment_releases_the_reservation(
    client: Client, ledger: Ledger, make_order: MakeOrder, record_history: RecordHistory
) -> None:
    order = make_order(payment_token="tok_declined")
    widgets_before = ledger.available("sku-widget")
    launched = await start_order(client, order)
    error = await failure_of(launched.handle)
    assert error.type == "OrderFailed" and error.non_retryable
    assert "declined" in error.message and "release_inventory" in error.message
    assert ledger.events(order.order_id) == ["reserved", "screened", "released"]
    assert ledger.available("sku-widget") == widgets_before
    status = await launched.handle.query(OrderWorkflow.status)
    assert status.stage == Stage.FAILED and status.compensations == ["release_inventory"]
    await record_history("orders", "payment_declined", launched.handle)


async def test_confirmation_timeout_compensates_in_reverse_order(
    client: Client, ledger: Ledger, make_order: MakeOrder, record_history: RecordHistory
) -> None:
    order = make_order(confirmation_timeout_seconds=1.0)
    launched = await start_order(client, order)
    error = await failure_of(launched.handle)
    assert "no confirmation within 1s" in error.message
    assert ledger.events(order.order_id) == [
        "reserved",
        "screened",
        "charged",
        "refunded",
        "released",
    ]
    await record_history("orders", "confirmation_timeout", launched.handle)


async def test_rejection_signal_compensates(
    client: Client, ledger: Ledger, make_order: MakeOrder
) -> None:
    order = make_order()
    launched = await start_order(client, order)
    await wait_for_stage(launched.handle, Stage.AWAITING_CONFIRMATION)
    await launched.handle.signal(OrderWorkflow.confirm, Confirmation("fraud-team", approved=False))
    error = await failure_of(launched.handle)
    assert "rejected by fraud-team" in error.message
    assert ledger.events(order.order_id)[-2:] == ["refunded", "released"]


async def test_update_changes_address_and_validator_rejects_bad_input(
    client: Client, make_order: MakeOrder, record_history: RecordHistory
) -> None:
    launched = await start_order(client, make_order())
    handle = launched.handle
    await wait_for_stage(handle, Stage.AWAITING_CONFIRMATION)

    new_address = Address("Ada Lovelace", "1 Rue de Rivoli", "Paris", "75001", "FR")
    status = await handle.execute_update(OrderWorkflow.change_shipping_address, new_address)
    assert status.shipping_address == new_address

    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(
            OrderWorkflow.change_shipping_address,
            Address("Ada", "1 Rue de Rivoli", "Paris", "75001", "France"),
        )
    assert "not an ISO 3166-1 alpha-2 code" in str(info.value.cause)
    # A rejected update leaves no trace in history and no change in state.
    assert (await handle.query(OrderWorkflow.status)).shipping_address == new_address

    await handle.signal(OrderWorkflow.confirm, Confirmation("ops"))
    result = await client.get_workflow_handle_for(OrderWorkflow.run, handle.id).result()
    assert result.shipped_to == new_address
    await record_history("orders", "address_updated", handle)


async def test_launch_is_idempotent(client: Client, ledger: Ledger, make_order: MakeOrder) -> None:
    order = make_order()
    first = await start_order(client, order)
    second = await start_order(client, order)
    assert first.started and not second.started
    assert second.run_id == first.run_id
    await wait_for_stage(first.handle, Stage.AWAITING_CONFIRMATION)
    assert ledger.events(order.order_id) == ["reserved", "screened", "charged"]
    await first.handle.signal(OrderWorkflow.confirm, Confirmation("ops"))
    await first.handle.result()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"items": []}, "the order has no items"),
        ({"items": [LineItem("sku-widget", 0, 100)]}, "quantity must be positive"),
        ({"shipping_address": Address("A", "B", "C", "D", "fr")}, "ISO 3166-1"),
    ],
)
async def test_invalid_order_fails_fast_and_non_retryable(
    client: Client, ledger: Ledger, make_order: MakeOrder, overrides: dict[str, Any], message: str
) -> None:
    order = make_order(**overrides)
    started = time.monotonic()
    launched = await start_order(client, order)
    error = await failure_of(launched.handle)
    assert time.monotonic() - started < 10
    assert error.type == "InvalidOrder" and error.non_retryable and message in error.message
    events = [e.event_type async for e in launched.handle.fetch_history_events()]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in events
    assert ledger.events(order.order_id) == []


async def test_out_of_stock_is_not_retried(
    client: Client, ledger: Ledger, make_order: MakeOrder
) -> None:
    ledger.set_stock("sku-gizmo", 1)
    order = make_order(items=[LineItem("sku-gizmo", 3, 999)])
    launched = await start_order(client, order)
    error = await failure_of(launched.handle)
    assert "3 requested, 1 available" in error.message
    assert "nothing to undo" in error.message
    history = [e async for e in launched.handle.fetch_history_events()]
    failed = [e for e in history if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED]
    assert len(failed) == 1, "a non-retryable OutOfStock must fail on its first attempt"
    assert ledger.available("sku-gizmo") == 1
