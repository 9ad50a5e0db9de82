"""An in-process ingest worker (with all workerkit interceptors) on the test server."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from workerkit import Database, WorkerSettings, build_worker

from ingest.activities import create_activities
from ingest.queue import QUEUE
from ingest.settings import IngestSettings
from ingest.store import IngestStore

SECONDS_PER_ITEM = 0.02


@pytest.fixture(scope="module")
def store(postgres_database: Database) -> IngestStore:
    """The store the module's worker uses, on the module's PostgreSQL database."""
    return IngestStore(postgres_database)


@pytest.fixture(scope="module")
async def ingest_worker(client: Client, postgres_url: str) -> AsyncIterator[None]:
    settings = IngestSettings.from_env({"INGEST_SECONDS_PER_ITEM": str(SECONDS_PER_ITEM)})
    queue = dataclasses.replace(QUEUE, activities=lambda: create_activities(settings))
    # The activities open DATABASE_URL when the worker builds them.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", postgres_url)
        worker = build_worker(client, queue, WorkerSettings.from_env({}, tuning=QUEUE.tuning))
    async with worker:
        yield
