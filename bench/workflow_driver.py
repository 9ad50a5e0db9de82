"""The client side of a run: start a workload's workflows, check their results, time them."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench_error import BenchError
from workload import BenchWorkflow, ChainWorkflow, Workload

WORKFLOW_TIMEOUT = timedelta(minutes=2)


def saga_order(order_id: str) -> Any:
    """An order of one item, which the saga can pay for and ship."""
    # Imported here, not at the top: only saga runs need the orders service.
    from orders.models import Address, LineItem, Order

    return Order(
        order_id=order_id,
        customer_id="bench",
        items=[LineItem("sku-widget", 1, 500)],
        shipping_address=Address("Bench", "1 Rue de Rivoli", "Paris", "75001", "FR"),
        payment_token="tok_visa",
    )


async def run_workflow(client: Client, workload: Workload, task_queue: str, wf_id: str) -> None:
    """Run one workflow of ``workload`` to its end and check its result."""
    if workload == "saga":
        from orders.models import Confirmation
        from orders.workflows import OrderWorkflow

        handle = await client.start_workflow(
            OrderWorkflow.run,
            saga_order(wf_id),
            id=wf_id,
            task_queue=task_queue,
            execution_timeout=WORKFLOW_TIMEOUT,
            start_signal="confirm",
            start_signal_args=[Confirmation("bench")],
        )
        result: str = (await handle.result()).order_id
    else:
        result = await client.execute_workflow(
            BenchWorkflow.run if workload == "echo" else ChainWorkflow.run,
            wf_id,
            id=wf_id,
            task_queue=task_queue,
            execution_timeout=WORKFLOW_TIMEOUT,
        )
    if result != wf_id:
        raise BenchError(f"workflow {wf_id} returned {result!r}, expected {wf_id!r}")


async def drive(
    client: Client,
    workload: Workload,
    task_queues: list[str],
    count: int,
    concurrency: int,
    *,
    id_prefix: str = "",
) -> tuple[float, list[float]]:
    """Run ``count`` workflows over ``task_queues``, ``concurrency`` at a time.

    Returns:
        Workflows per second, and each workflow's latency in seconds.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> float:
        task_queue = task_queues[i % len(task_queues)]
        async with gate:
            begin = time.perf_counter()
            await run_workflow(client, workload, task_queue, f"{id_prefix}{task_queue}-{i}")
            return time.perf_counter() - begin

    begin = time.perf_counter()
    latencies = await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - begin), list(latencies)


def prepare_saga_state(state_dir: Path, name: str, database_url: str | None = None) -> None:
    """A fresh ledger for one saga run, migrated to the orders queue's head: a SQLite file in
    ``state_dir``, or the fresh PostgreSQL database at ``database_url``."""
    from workerkit import open_database
    from workerkit._migrations import migrate

    from orders.queue import QUEUE

    state_dir.mkdir(parents=True)
    environ = {"WORKER_STATE_DIR": str(state_dir)}
    if database_url is not None:
        environ["DATABASE_URL"] = database_url
    db = open_database(environ)
    try:
        migrate(db, [dataclasses.replace(QUEUE, name=name, metrics=())])
    finally:
        db.dispose()
