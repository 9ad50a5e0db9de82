"""An in-process ingest worker (with all workerkit interceptors) on the test server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from workerkit import Database

from ingest.activities import create_activities
from ingest.queue import QUEUE
from ingest.settings import IngestSettings
from ingest.store import IngestStore

from support import in_process_worker

SECONDS_PER_ITEM = 0.02


@pytest.fixture(scope="module")
def store(postgres_database: Database) -> IngestStore:
    """The store the module's worker uses, on the module's PostgreSQL database."""
    return IngestStore(postgres_database)


@pytest.fixture(scope="module")
async def ingest_worker(client: Client, postgres_url: str) -> AsyncIterator[None]:
    settings = IngestSettings.from_env({"INGEST_SECONDS_PER_ITEM": str(SECONDS_PER_ITEM)})
    async with in_process_worker(
        client, QUEUE, lambda: create_activities(settings), database_url=postgres_url
    ):
        yield
