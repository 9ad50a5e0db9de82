"""The bare SDK's side of the bench: a ``temporalio.worker.Worker`` with default SDK options.

Usage: ``python bare_worker.py TASK_QUEUE WORKLOAD``. It reads ``TEMPORAL_ADDRESS`` and the
same ``WORKER_*`` slot and poller counts the project worker gets, so both sides run with the
same concurrency. No plugin, no interceptors, no custom runtime, the stdlib event loop, the
SDK's default sandbox and data converter. For ``saga`` it registers the orders queue's
workflow and the activities its factory builds (the same code the project worker runs).

With ``BENCH_REQUIRED_IMPORTS=1`` it first imports, and never uses, the packages every
project worker loads: what they cost in memory is then in its figures too. With
``BENCH_REQUIRED_IMPORTS=production`` it also imports those the production configuration
loads (cryptography's AES-GCM, the OTLP/HTTP exporter and the requests it sends with).

Readiness is detected the way workerkit does it: ``worker.is_running`` is checked every
50 ms, and when it turns true the line ``ready`` is printed to stdout.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from workload import BenchWorkflow, ChainWorkflow, echo

READY_LINE = "ready"
# The mission's required packages as the project worker imports them (importlib.metadata
# comes with OpenTelemetry, which finds its context implementation through entry points).
REQUIRED_IMPORTS = (
    "uvloop",
    "prometheus_client",
    "opentelemetry.sdk.trace.export",
    "temporalio.contrib.opentelemetry",
)
PRODUCTION_IMPORTS = (
    "cryptography.hazmat.primitives.ciphers.aead",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "requests",  # which the exporter imports when it is created
)


def _setting(name: str) -> int:
    return int(os.environ[f"WORKER_{name.upper()}"])


def registered(workload: str) -> tuple[list[type], list[Callable[..., Any]]]:
    if workload == "saga":
        from orders.activities import create_activities
        from orders.workflows import OrderWorkflow

        return [OrderWorkflow], create_activities()
    return [BenchWorkflow if workload == "echo" else ChainWorkflow], [echo]


async def serve(task_queue: str, workload: str) -> None:
    client = await Client.connect(
        os.environ["TEMPORAL_ADDRESS"], namespace=os.environ.get("TEMPORAL_NAMESPACE", "default")
    )
    workflows, activities = registered(workload)
    pollers = PollerBehaviorSimpleMaximum(maximum=_setting("max_pollers"))
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=activities,
        max_concurrent_activities=_setting("max_concurrent_activities"),
        max_concurrent_workflow_tasks=_setting("max_concurrent_workflow_tasks"),
        max_concurrent_local_activities=_setting("max_concurrent_local_activities"),
        max_cached_workflows=_setting("max_cached_workflows"),
        workflow_task_poller_behavior=pollers,
        activity_task_poller_behavior=pollers,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    running = asyncio.ensure_future(worker.run())
    while not worker.is_running:  # the same check and interval as workerkit's runner
        if running.done():
            running.result()  # raises the start-up error
        await asyncio.sleep(0.05)
    print(READY_LINE, flush=True)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    await worker.shutdown()
    await running


if __name__ == "__main__":
    required = os.environ.get("BENCH_REQUIRED_IMPORTS", "")
    if required in ("1", "production"):
        for module in REQUIRED_IMPORTS + (PRODUCTION_IMPORTS if required == "production" else ()):
            importlib.import_module(module)
    asyncio.run(serve(sys.argv[1], sys.argv[2]))
