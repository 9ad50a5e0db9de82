"""An in-process orders worker (with all workerkit interceptors) on the test server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from temporalio.client import Client
from workerkit import Database

from orders.activities import create_activities
from orders.ledger import Ledger
from orders.models import Address, LineItem, Order
from orders.queue import QUEUE
from orders.settings import OrdersSettings

from support import in_process_worker


@pytest.fixture(scope="module")
def ledger(postgres_database: Database) -> Ledger:
    """The ledger the module's worker uses, on the module's PostgreSQL database."""
    return Ledger(postgres_database)


@pytest.fixture(scope="module")
async def orders_worker(client: Client, postgres_url: str) -> AsyncIterator[None]:
    settings = OrdersSettings.from_env({"ORDERS_PACK_SECONDS_PER_ITEM": "0.01"})
    async with in_process_worker(
        client, QUEUE, lambda: create_activities(settings), database_url=postgres_url
    ):
        yield


@pytest.fixture
def make_order() -> Callable[..., Order]:
    def make(**overrides: object) -> Order:
        fields: dict[str, object] = {
            "order_id": f"test-{uuid.uuid4().hex[:10]}",
            "customer_id": "cust-1",
            "items": [LineItem("sku-widget", 2, 1250), LineItem("sku-gadget", 1, 4000)],
            "shipping_address": Address(
                "Ada Lovelace", "12 St James's Sq", "London", "SW1Y 4JH", "GB"
            ),
            "payment_token": "tok_visa",
            "confirmation_timeout_seconds": 60.0,
        }
        fields.update(overrides)
        return Order(**fields)  # type: ignore[arg-type]

    return make
