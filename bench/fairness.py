"""Fair sharing, measured: how long a second tenant's order waits behind one tenant's backlog,
with fairness keys and without, and whether a task queue rate limit holds its rate.

On one dev server with ``matching.enableFairness=true`` (one task queue partition, so the
dispatch order is the server's whole order), a worker with a fixed capacity (``--slots``
activity slots, each activity ``--work-ms`` long) serves a queue; tenant ``big`` submits
``--backlog`` orders at once, and once its backlog waits, tenant ``small`` submits one. The
figure is the time from that submit to the start of its activity. The same run on a queue that
declares no fairness key (the starts carry none: first in, first out) is the reference.
Rounds alternate the two, so both see the same machine, and the ratio is of medians.

Then ``fleet limits apply``'s rate limit: a queue declaring ``activity_tasks=--rate`` gets a
backlog larger than a minute of it, and the activity starts are counted over 60 s.

    uv run python bench/fairness.py [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import VersioningBehavior
from workerkit import (
    Fairness,
    Queue,
    RateLimits,
    Tuning,
    WorkerSettings,
    build_worker,
    launch,
)
from workerkit._task_queue_limits import apply_limits

from child_processes import stop
from dev_server import default_temporal_cli, start_server

FAIRNESS_CONFIG = ("matching.enableFairness=true",)
RATE_WINDOW_S = 60.0
RATE_WARMUP_S = 5.0

# Activity start times by order id, recorded by the activity itself (one process).
STARTED: dict[str, float] = {}


@dataclass(frozen=True)
class TenantOrder:
    order_id: str
    tenant: str
    work_ms: int


@activity.defn
async def fulfil(order: TenantOrder) -> None:
    STARTED[order.order_id] = time.monotonic()
    await asyncio.sleep(order.work_ms / 1000)


@workflow.defn
class TenantOrderWorkflow:
    @workflow.run
    async def run(self, order: TenantOrder) -> None:
        await workflow.execute_activity(fulfil, order, start_to_close_timeout=timedelta(minutes=5))


def bench_queue(*, keyed: bool, slots: int, rate: float | None = None) -> Queue:
    return Queue(
        name=f"fair{uuid.uuid4().hex[:10]}",
        workflows=[TenantOrderWorkflow],
        activities=[fulfil],
        workflow_ids={TenantOrderWorkflow: lambda o: f"tenant-order-{o.order_id}"},
        versioning=VersioningBehavior.PINNED,
        tuning=Tuning(max_concurrent_activities=slots),
        fairness=Fairness(key="tenant") if keyed else Fairness(),
        # Declared, so both kinds of run send every activity through the task queue (a queue
        # without an activity rate limit may start them eagerly, while a slot is free): only
        # the keys differ. It is applied to the server only by the rate check.
        rate_limits=RateLimits(activity_tasks=rate or 10_000.0),
    )


def settings(queue: Queue) -> WorkerSettings:
    return WorkerSettings.from_env({"WORKER_WORKFLOW_SANDBOX": "false"}, tuning=queue.tuning)


async def submit(client: Client, queue: Queue, orders: list[TenantOrder]) -> None:
    gate = asyncio.Semaphore(50)

    async def one(order: TenantOrder) -> None:
        async with gate:
            await launch(client, queue, TenantOrderWorkflow.run, order)

    await asyncio.gather(*(one(o) for o in orders))


async def wait_started(order_ids: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(i in STARTED for i in order_ids):
        if time.monotonic() > deadline:
            missing = sum(i not in STARTED for i in order_ids)
            raise RuntimeError(f"{missing} of {len(order_ids)} activities never started")
        await asyncio.sleep(0.02)


async def one_round(client: Client, args: argparse.Namespace, *, keyed: bool) -> float:
    """Seconds from the small tenant's submit to its activity's start, behind the backlog."""
    queue = bench_queue(keyed=keyed, slots=args.slots)
    big = [TenantOrder(f"big-{uuid.uuid4().hex}", "big", args.work_ms) for _ in range(args.backlog)]
    small = TenantOrder(f"small-{uuid.uuid4().hex}", "small", args.work_ms)
    async with build_worker(client, queue, settings(queue)):
        await submit(client, queue, big)
        # The backlog is waiting once the slots are busy: the small order comes in behind it.
        await wait_started([big[0].order_id], 60)
        submitted = time.monotonic()
        await submit(client, queue, [small])
        await wait_started([small.order_id], 600)
        waited = STARTED[small.order_id] - submitted
        await wait_started([o.order_id for o in big], 600)  # drained: the next round starts clean
    return waited


async def rate_check(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    queue = bench_queue(keyed=True, slots=100, rate=args.rate)
    await apply_limits(client, queue)
    count = int(args.rate * (RATE_WINDOW_S + RATE_WARMUP_S) * 1.3) + 50
    orders = [TenantOrder(f"rate-{uuid.uuid4().hex}", f"t{i % 10}", 0) for i in range(count)]
    async with build_worker(client, queue, settings(queue)):
        await submit(client, queue, orders)
        await wait_started([orders[0].order_id], 60)
        await asyncio.sleep(RATE_WARMUP_S + RATE_WINDOW_S + 2)
    starts = sorted(STARTED[o.order_id] for o in orders if o.order_id in STARTED)
    window_start = starts[0] + RATE_WARMUP_S
    in_window = [t for t in starts if window_start <= t < window_start + RATE_WINDOW_S]
    if len(starts) >= count:
        raise RuntimeError("the backlog ran out inside the window: raise the order count")
    measured = len(in_window) / RATE_WINDOW_S
    return {
        "declared_per_s": args.rate,
        "measured_per_s": round(measured, 3),
        "deviation": round(measured / args.rate - 1, 4),
        "window_s": RATE_WINDOW_S,
        "within_10pct": abs(measured / args.rate - 1) <= 0.10,
    }


async def main_async(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir)
    server, client = await start_server(
        args.temporal, 1, workdir / "server.log", dynamic_config=FAIRNESS_CONFIG
    )
    try:
        waits: dict[str, list[float]] = {"fair": [], "fifo": []}
        for round_no in range(args.rounds):
            for mode in ("fifo", "fair") if round_no % 2 == 0 else ("fair", "fifo"):
                waited = await one_round(client, args, keyed=mode == "fair")
                waits[mode].append(waited)
                print(
                    f"round {round_no + 1} {mode}: small tenant waited {waited:.3f} s", flush=True
                )
        fair, fifo = statistics.median(waits["fair"]), statistics.median(waits["fifo"])
        report: dict[str, Any] = {
            "backlog": args.backlog,
            "slots": args.slots,
            "work_ms": args.work_ms,
            "drain_s": args.backlog * args.work_ms / 1000 / args.slots,
            "small_tenant_wait_s": {
                "with_keys": waits["fair"],
                "without_keys": waits["fifo"],
                "median_with_keys": round(fair, 3),
                "median_without_keys": round(fifo, 3),
                "ratio_without_over_with": round(fifo / fair, 1) if fair > 0 else None,
            },
        }
        if not args.skip_rate:
            report["rate_limit"] = await rate_check(client, args)
        print(json.dumps(report, indent=2))
        if args.json:
            await asyncio.to_thread(Path(args.json).write_text, json.dumps(report, indent=2) + "\n")
        return 0
    finally:
        await stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=500, help="the big tenant's orders")
    parser.add_argument("--slots", type=int, default=5, help="the worker's activity slots")
    parser.add_argument("--work-ms", type=int, default=50, help="each activity's duration")
    parser.add_argument("--rate", type=float, default=10.0, help="the rate limit checked")
    parser.add_argument("--skip-rate", action="store_true", help="skip the 60 s rate check")
    parser.add_argument("--temporal", default=default_temporal_cli())
    parser.add_argument("--workdir", default=".data/bench-fairness")
    parser.add_argument("--json", help="write the report here")
    args = parser.parse_args()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
