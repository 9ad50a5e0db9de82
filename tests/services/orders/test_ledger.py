"""The ledger's idempotency: a retried activity never reserves, charges or notifies twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from orders.ledger import Ledger, OutOfStock, PaymentDeclined, UnknownSku
from orders.models import LineItem


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.sqlite3")


def test_reserve_and_release_are_idempotent(ledger: Ledger) -> None:
    items = [LineItem("sku-widget", 3, 100)]
    before = ledger.available("sku-widget")
    first = ledger.reserve("o1", items)
    assert ledger.reserve("o1", items) == first
    assert ledger.available("sku-widget") == before - 3
    assert ledger.release("o1") is True
    assert ledger.release("o1") is False
    assert ledger.available("sku-widget") == before
    assert ledger.events("o1") == ["reserved", "released"]


def test_charge_refund_and_notify_are_idempotent(ledger: Ledger) -> None:
    payment = ledger.charge("o2", "c", 500, "tok_visa")
    assert ledger.charge("o2", "c", 500, "tok_visa") == payment
    assert ledger.refund("o2") is True and ledger.refund("o2") is False
    assert ledger.notify("o2", "shipped", "hi") is True
    assert ledger.notify("o2", "shipped", "hi") is False
    assert ledger.record_shipment("o2", "addr") == ledger.record_shipment("o2", "addr")
    assert ledger.events("o2") == ["charged", "refunded", "notified:shipped", "shipped"]


def test_business_refusals(ledger: Ledger) -> None:
    with pytest.raises(UnknownSku):
        ledger.reserve("o3", [LineItem("sku-nope", 1, 1)])
    ledger.set_stock("sku-gizmo", 2)
    with pytest.raises(OutOfStock, match="5 requested, 2 available"):
        ledger.reserve("o3", [LineItem("sku-gizmo", 5, 1)])
    with pytest.raises(PaymentDeclined):
        ledger.charge("o3", "c", 1, "tok_declined")
    assert ledger.available("sku-gizmo") == 2
