"""An in-process orders worker (with all workerkit interceptors) on the test server."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from temporalio.client import Client
from workerkit import WorkerSettings, build_worker

from orders.ledger import Ledger
from orders.models import Address, LineItem, Order
from orders.queue import QUEUE


@pytest.fixture(scope="module")
def ledger_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("orders") / "ledger.sqlite3"


@pytest.fixture(scope="module")
def ledger(ledger_path: Path) -> Ledger:
    return Ledger(ledger_path)


@pytest.fixture(scope="module")
async def orders_worker(client: Client, ledger_path: Path) -> AsyncIterator[None]:
    os.environ["ORDERS_LEDGER_PATH"] = str(ledger_path)
    os.environ["ORDERS_PACK_SECONDS_PER_ITEM"] = "0.01"
    settings = WorkerSettings.from_env({}, tuning=QUEUE.tuning)
    async with build_worker(client, QUEUE, settings):
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
