"""State that survives scaling and restarts: orders workers in separate pods share PostgreSQL.

The reproduction of what a per-process SQLite file got wrong: two workers, each with its own
state directory (two pods), one database; a worker dies right after the payment provider
charged and before the ledger recorded it; a new worker replaces it (a plain rollout); every
order is charged exactly once and every rejected order is really refunded. Then the database
itself goes down mid-run: activities retry, /readyz says why, and every order completes once
it returns.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from workerkit import Database

from orders.client import start_order
from orders.ledger import Ledger
from orders.models import Address, Confirmation, LineItem, Order, OrderResult, Stage
from orders.workflows import OrderWorkflow

from postgres import PostgresServer
from services.orders.stages import wait_for_stage
from support import WorkerProcess, http_get, migrate_sqlite, run_cli

# slow: fleet worker processes (one SIGKILLed) and a PostgreSQL server of its own.
pytestmark = pytest.mark.slow

SpawnWorker = Callable[..., WorkerProcess]
ORDERS = 100


def order(prefix: str, n: int) -> Order:
    return Order(
        order_id=f"{prefix}-{n:03d}",
        customer_id=f"cust-{n}",
        items=[LineItem("sku-widget", 1, 1000 + n)],
        shipping_address=Address("Grace Hopper", "1 Navy Way", "Arlington", "22202", "US"),
        payment_token="tok_visa",
        confirmation_timeout_seconds=300.0,
    )


def pod(spawn_worker: SpawnWorker, tmp_path: Path, name: str, url: str) -> WorkerProcess:
    """An orders worker with a state directory of its own, like a pod, on the shared database."""
    state = tmp_path / name
    state.mkdir()
    migrate_sqlite(state)  # what it would use alone: proves nothing is kept there
    worker = spawn_worker(
        "orders",
        env={
            "DATABASE_URL": url,
            "WORKER_STATE_DIR": str(state),
            "ORDERS_PACK_SECONDS_PER_ITEM": "0",
            # No workflow cache, so no sticky queue: a dead worker's workflows move at once.
            "WORKER_MAX_CACHED_WORKFLOWS": "0",
        },
    )
    worker.wait_ready()
    return worker


def provider_charges(url: str, prefix: str) -> list[tuple[str, bool]]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT order_id, refunded FROM orders_provider_charges WHERE order_id LIKE %s",
            (f"{prefix}-%",),
        ).fetchall()
    return [(str(o), bool(r)) for o, r in rows]


async def charge_attempts(client: Client, workflow_id: str) -> int:
    """The highest attempt number at which the order's charge activity started."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled = {
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "charge_payment"
    }
    return max(
        (
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
        ),
        default=0,
    )


async def confirm_all(handles: list[WorkflowHandle[OrderWorkflow, OrderResult]]) -> None:
    """Approve even-numbered orders and reject odd ones, once each awaits confirmation."""

    async def confirm(i: int, handle: WorkflowHandle[OrderWorkflow, OrderResult]) -> None:
        await wait_for_stage(handle, Stage.AWAITING_CONFIRMATION, timeout=120)
        await handle.signal(OrderWorkflow.confirm, Confirmation("ops", approved=i % 2 == 0))

    await asyncio.gather(*(confirm(i, h) for i, h in enumerate(handles)))


@pytest.mark.timeout(300)
async def test_a_worker_killed_after_the_provider_charged_never_charges_twice(
    client: Client,
    spawn_worker: SpawnWorker,
    tmp_path: Path,
    postgres_url: str,
    postgres_database: Database,
) -> None:
    prefix = f"kill-{uuid.uuid4().hex[:6]}"
    first = pod(spawn_worker, tmp_path, "pod-a", postgres_url)
    pod(spawn_worker, tmp_path, "pod-b", postgres_url)

    # Hold the ledger's payment writes: each charge then stops right after the provider
    # took it (committed, in its own transaction) and before the ledger records it.
    blocker = psycopg.connect(postgres_url)
    blocker.execute("LOCK TABLE orders_payments IN EXCLUSIVE MODE")
    launched = [await start_order(client, order(prefix, n)) for n in range(ORDERS)]
    handles = [client.get_workflow_handle_for(OrderWorkflow.run, x.workflow_id) for x in launched]
    deadline = time.monotonic() + 60
    while len(provider_charges(postgres_url, prefix)) < 10:
        assert time.monotonic() < deadline, "the provider never charged"
        await asyncio.sleep(0.1)
    first.proc.kill()  # SIGKILL: its charges in flight are retried elsewhere
    first.proc.wait()
    blocker.rollback()
    blocker.close()
    pod(spawn_worker, tmp_path, "pod-c", postgres_url)  # the rollout's replacement

    await confirm_all(handles)
    outcomes = await asyncio.gather(*(h.result() for h in handles), return_exceptions=True)

    ledger = Ledger(postgres_database)
    charges = provider_charges(postgres_url, prefix)
    by_order: dict[str, list[bool]] = {f"{prefix}-{n:03d}": [] for n in range(ORDERS)}
    for order_id, refunded in charges:
        by_order[order_id].append(refunded)
    assert all(len(c) == 1 for c in by_order.values()), "every order charged exactly once"
    for n, outcome in enumerate(outcomes):
        order_id = f"{prefix}-{n:03d}"
        events = ledger.events(order_id)
        assert events.count("charged") == 1, (order_id, events)
        if n % 2 == 0:
            assert isinstance(outcome, OrderResult), (order_id, outcome)
            assert by_order[order_id] == [False] and "shipped" in events
        else:
            assert isinstance(outcome, WorkflowFailureError), (order_id, outcome)
            message = str(outcome.cause)
            assert "compensated: refund_payment, release_inventory" in message, message
            assert "NOT compensated" not in message
            assert by_order[order_id] == [True], "the provider really refunded"
            assert events[-2:] == ["refunded", "released"], events
    # The kill landed mid-charge: some charges ran again (attempt 2) and found the first.
    retried = [await charge_attempts(client, h.id) for h in handles]
    assert max(retried) >= 2, "no charge was in flight on the killed worker"


@pytest.mark.timeout(240)
async def test_orders_complete_after_the_database_comes_back(
    client: Client, spawn_worker: SpawnWorker, tmp_path: Path
) -> None:
    server = PostgresServer()  # its own server: this test stops it
    try:
        url = server.create_database()
        # The migration runs once, from the command, before the workers start.
        done = run_cli("db", "migrate", env={"DATABASE_URL": url})
        assert done.returncode == 0 and "orders: migrated empty -> orders_0001" in done.stdout
        worker = pod(spawn_worker, tmp_path, "pod-a", url)
        prefix = f"down-{uuid.uuid4().hex[:6]}"
        server.halt()
        launched = [await start_order(client, order(prefix, n)) for n in range(5)]
        handles = [
            client.get_workflow_handle_for(OrderWorkflow.run, x.workflow_id) for x in launched
        ]
        deadline = time.monotonic() + 30
        while True:
            status, reason = http_get(worker.url("/readyz"))
            if status == 503:
                break
            assert time.monotonic() < deadline, "readyz never said the database is down"
            await asyncio.sleep(0.2)
        assert reason.startswith("database unavailable (postgresql://postgres@127.0.0.1"), reason
        await asyncio.sleep(3)  # the reservations fail and back off meanwhile
        description = await handles[0].describe()
        pending = description.raw_description.pending_activities
        assert pending and "database unavailable" in pending[0].last_failure.message
        assert worker.proc.poll() is None, "the worker keeps running"

        server.start()
        await confirm_all(handles)
        for i, handle in enumerate(handles):
            if i % 2 == 0:
                assert (await handle.result()).order_id == f"{prefix}-{i:03d}"
            else:
                with pytest.raises(WorkflowFailureError):
                    await handle.result()
        assert http_get(worker.url("/readyz"))[0] == 200
    finally:
        server.stop()
