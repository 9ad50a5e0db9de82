"""The bare SDK's side of the soak: every installed queue on a plain ``temporalio`` Worker.

Usage: ``python bare_fleet.py``. It reads ``TEMPORAL_ADDRESS`` and ``TEMPORAL_NAMESPACE``
and, in one process, runs one ``temporalio.worker.Worker`` per queue the registry finds, with
the queue's own workflows and the activities its factory builds (the same code, the same
database), and otherwise the SDK's defaults: no plugin, interceptors, custom runtime, metrics
or tracing, the stdlib event loop, the default sandbox and data converter. It is the anchor
of the soak: what grows here grows in the SDK or in the queues' own code, not in workerkit.

When every worker runs it prints ``ready``; SIGTERM shuts them down.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import os
import signal

from temporalio.client import Client
from temporalio.worker import Worker
from workerkit import discover_queues

READY_LINE = "ready"


async def serve() -> None:
    client = await Client.connect(
        os.environ["TEMPORAL_ADDRESS"], namespace=os.environ.get("TEMPORAL_NAMESPACE", "default")
    )
    workers = []
    for queue in discover_queues().values():
        activities = queue.build_activities()
        sync = any(not inspect.iscoroutinefunction(a) for a in activities)
        workers.append(
            Worker(
                client,
                task_queue=queue.task_queue,
                workflows=list(queue.workflows),
                activities=activities,
                # The SDK requires an executor for synchronous activities; its size is the
                # SDK's default activity concurrency.
                activity_executor=concurrent.futures.ThreadPoolExecutor(100) if sync else None,
            )
        )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    running = [asyncio.ensure_future(w.run()) for w in workers]
    while not all(w.is_running for w in workers):
        for task in running:
            if task.done():
                task.result()  # raises the start-up error
        await asyncio.sleep(0.05)
    print(READY_LINE, flush=True)
    await stop.wait()
    await asyncio.gather(*(w.shutdown() for w in workers))
    await asyncio.gather(*running)


if __name__ == "__main__":
    asyncio.run(serve())
