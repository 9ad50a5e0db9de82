"""The ledger's idempotency, on SQLite and on PostgreSQL: a retried activity, on this worker
or on another, never reserves, charges, refunds or notifies twice, and a compensation that
finds nothing to undo says so."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from workerkit import Database

from orders.ledger import (
    Ledger,
    NothingToUndo,
    OutOfStock,
    PaymentDeclined,
    PaymentProvider,
    UnknownSku,
)
from orders.models import LineItem


@pytest.fixture
def ledger(any_database: Database) -> Ledger:
    return Ledger(any_database)


def new_id() -> str:
    return f"o-{uuid.uuid4().hex[:8]}"


def test_the_migration_seeds_the_demo_stock_once(any_database: Database) -> None:
    ledger = Ledger(any_database)
    assert ledger.available("sku-gizmo") <= 5 and ledger.available("sku-widget") > 0
    assert Ledger(any_database).available("sku-widget") == ledger.available("sku-widget")


def test_reserve_and_release_are_idempotent(ledger: Ledger) -> None:
    order = new_id()
    items = [LineItem("sku-widget", 3, 100)]
    before = ledger.available("sku-widget")
    first = ledger.reserve(order, items)
    assert ledger.reserve(order, items) == first
    assert ledger.available("sku-widget") == before - 3
    assert ledger.release(order) is True
    assert ledger.release(order) is False
    assert ledger.available("sku-widget") == before
    assert ledger.events(order) == ["reserved", "released"]


def test_ids_are_derived_from_the_order_not_drawn_per_attempt(ledger: Ledger) -> None:
    order = new_id()
    other = Ledger(ledger.db)  # another worker process on the same database
    assert ledger.reserve(order, [LineItem("sku-widget", 1, 1)]) == other.reserve(
        order, [LineItem("sku-widget", 1, 1)]
    )
    assert ledger.record_shipment(order, "a") == other.record_shipment(order, "a")


def test_charge_refund_and_notify_are_idempotent(ledger: Ledger) -> None:
    order = new_id()
    payment = ledger.charge(order, "c", 500, "tok_visa")
    assert ledger.charge(order, "c", 500, "tok_visa") == payment
    assert ledger.provider.charges(order) == [(payment, 500, False)]
    assert ledger.refund(order) is True and ledger.refund(order) is False
    assert ledger.provider.charges(order) == [(payment, 500, True)]
    assert ledger.notify(order, "shipped", "hi") is True
    assert ledger.notify(order, "shipped", "hi") is False
    assert ledger.record_shipment(order, "addr") == ledger.record_shipment(order, "addr")
    assert ledger.events(order) == ["charged", "refunded", "notified:shipped", "shipped"]


def test_a_charge_lost_after_the_provider_took_it_is_not_charged_again(ledger: Ledger) -> None:
    # The first attempt's worker died after the provider charged and before the ledger
    # recorded it: the retry (same idempotency key) gets the same payment, one charge.
    order = new_id()
    first = ledger.provider.charge(f"order-{order}/charge", order_id=order, amount_cents=700)
    assert ledger.charge(order, "c", 700, "tok_visa") == first
    assert ledger.provider.charges(order) == [(first, 700, False)]
    assert ledger.events(order) == ["charged"]


def test_concurrent_attempts_charge_once(ledger: Ledger) -> None:
    others = [Ledger(ledger.db, PaymentProvider(ledger.db)) for _ in range(6)]
    # Many rounds: two attempts collide on the provider's other unique index (its payment
    # id) in about 1 round of 75 on PostgreSQL, which once raised instead of charging once.
    with ThreadPoolExecutor(6) as pool:
        for _ in range(100):
            order = new_id()
            charges = pool.map(lambda lg, o=order: lg.charge(o, "c", 900, "tok_visa"), others)
            ids = set(charges)
            assert len(ids) == 1
            assert len(ledger.provider.charges(order)) == 1
            assert ledger.events(order) == ["charged"]


def test_compensations_with_nothing_to_undo_fail_loudly(ledger: Ledger) -> None:
    order = new_id()
    with pytest.raises(NothingToUndo, match="no payment recorded, nothing refunded"):
        ledger.refund(order)
    with pytest.raises(NothingToUndo, match="no reservation recorded, nothing released"):
        ledger.release(order)
    assert ledger.events(order) == []


def test_business_refusals_leave_nothing_behind(ledger: Ledger) -> None:
    order = new_id()
    with pytest.raises(UnknownSku):
        ledger.reserve(order, [LineItem("sku-nope", 1, 1)])
    ledger.set_stock("sku-gizmo", 2)
    widgets = ledger.available("sku-widget")
    with pytest.raises(OutOfStock, match="5 requested, 2 available"):
        ledger.reserve(order, [LineItem("sku-widget", 1, 1), LineItem("sku-gizmo", 5, 1)])
    assert ledger.available("sku-widget") == widgets  # the whole reservation rolled back
    with pytest.raises(PaymentDeclined):
        ledger.charge(order, "c", 1, "tok_declined")
    assert ledger.available("sku-gizmo") == 2
    assert ledger.provider.charges(order) == []
