"""An in-process ingest worker (with all workerkit interceptors) on the test server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from workerkit import WorkerSettings, build_worker

from ingest.queue import QUEUE
from ingest.store import IngestStore

SECONDS_PER_ITEM = 0.02


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ingest") / "store.sqlite3"


@pytest.fixture(scope="module")
def store(store_path: Path) -> IngestStore:
    return IngestStore(store_path)


@pytest.fixture(scope="module")
async def ingest_worker(client: Client, store_path: Path) -> AsyncIterator[None]:
    # The activities read their settings when the worker builds them.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("INGEST_STORE_PATH", str(store_path))
        env.setenv("INGEST_SECONDS_PER_ITEM", str(SECONDS_PER_ITEM))
        worker = build_worker(client, QUEUE, WorkerSettings.from_env({}, tuning=QUEUE.tuning))
    async with worker:
        yield
