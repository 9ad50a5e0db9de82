"""An in-process ingest worker (with all workerkit interceptors) on the test server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from workerkit import WorkerSettings, build_worker

from ingest.queue import QUEUE


@pytest.fixture(scope="module")
async def ingest_worker(client: Client) -> AsyncIterator[None]:
    async with build_worker(client, QUEUE, WorkerSettings.from_env({}, tuning=QUEUE.tuning)):
        yield
