"""A queue's worker in the test process, with every workerkit interceptor, on the test server.

It runs workflows in the SDK sandbox, whatever a production worker's default: the scenarios
it runs are the test suite's determinism check, and the histories ``make histories`` keeps
for the replay gate are recorded by it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import Worker
from workerkit import Queue, WorkerSettings, build_worker

# Whatever a production worker runs: the sandbox catches a non-deterministic call at once.
SANDBOXED = {"WORKER_WORKFLOW_SANDBOX": "true"}


@asynccontextmanager
async def in_process_worker(
    client: Client,
    queue: Queue,
    activities: Callable[[], Sequence[Callable[..., Any]]],
    *,
    database_url: str | None = None,
) -> AsyncIterator[Worker]:
    """Run ``queue``'s worker with ``activities`` (the factory a test binds) until exit.

    Args:
        client: The test server's client.
        queue: The queue's declaration; its tuning applies.
        activities: Builds the activities when the worker is built.
        database_url: The ``DATABASE_URL`` the activities open while they are built.
    """
    queue = dataclasses.replace(queue, activities=activities)
    with pytest.MonkeyPatch.context() as env:
        if database_url is not None:
            env.setenv("DATABASE_URL", database_url)
        settings = WorkerSettings.from_env(SANDBOXED, tuning=queue.tuning)
        worker = build_worker(client, queue, settings)
    async with worker:
        yield worker
