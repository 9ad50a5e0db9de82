"""Fixtures shared by every test: a real Temporal dev server and worker subprocesses."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from workerkit import Database, discover_queues, exit_process, migrate
from workerkit._database import database_url

from postgres import PostgresServer
from support import (
    RecordHistory,
    WorkerProcess,
    history_path,
    start_worker,
    temporal_cli,
)


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """One real Temporal dev server (SQLite in memory) for the whole session."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        dev_server_log_level="error",
        ui=False,
        # A build stops draining once no open execution is pinned to it; the server
        # checks that every few minutes by default. Seconds here, so tests can wait.
        dev_server_extra_args=[
            "--dynamic-config-value",
            'matching.wv.VersionDrainageStatusVisibilityGracePeriod="5s"',
            "--dynamic-config-value",
            'matching.wv.VersionDrainageStatusRefreshInterval="2s"',
            "--dynamic-config-value",
            "matching.enableFairness=true",
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture(scope="session")
def temporal_address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


@pytest.fixture
def spawn_worker(
    request: pytest.FixtureRequest, temporal_address: str, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``fleet worker ARGS`` against the test server; kill leftovers at teardown.

    Only for tests marked slow, so that ``-m "not slow"`` starts no worker process.
    """
    if request.node.get_closest_marker("slow") is None:
        pytest.fail(f"{request.node.nodeid} starts fleet worker processes: mark it slow")
    started: list[WorkerProcess] = []

    def spawn(
        *args: str, env: Mapping[str, str] | None = None, memory_limit: int | None = None
    ) -> WorkerProcess:
        worker = start_worker(
            args,
            address=temporal_address,
            workdir=tmp_path,
            name=f"worker-{len(started)}",
            env=env,
            memory_limit=memory_limit,
        )
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        worker.kill()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole session (databases created per module)."""
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


def migrated(url: str) -> Database:
    """A :class:`Database` for ``url`` with every installed queue's schema applied."""
    db = Database(database_url({"DATABASE_URL": url}), pool_size=4)
    migrate(db, list(discover_queues().values()))
    return db


@pytest.fixture(scope="session")
def migrated_template(postgres: PostgresServer) -> str:
    """A migrated PostgreSQL database that the per-test databases are copied from."""
    url = postgres.create_database("template")
    migrated(url).dispose()
    return url.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def postgres_url(postgres: PostgresServer, migrated_template: str) -> str:
    """A fresh, migrated PostgreSQL database for the test module."""
    return postgres.create_database(template=migrated_template)


@pytest.fixture(scope="module")
def postgres_database(postgres_url: str) -> Iterator[Database]:
    """The module's PostgreSQL database (``postgres_url``), for tests to read and pre-fill."""
    db = Database(database_url({"DATABASE_URL": postgres_url}), pool_size=4)
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh, migrated database for the test: once SQLite, once PostgreSQL."""
    if request.param == "sqlite":
        db = migrated(f"sqlite:///{tmp_path / 'fleet.sqlite3'}")
    else:
        template = request.getfixturevalue("migrated_template")
        url = request.getfixturevalue("postgres").create_database(template=template)
        db = Database(database_url({"DATABASE_URL": url}), pool_size=4)
    yield db
    db.dispose()


@pytest.fixture
def record_history() -> RecordHistory:
    """Store a finished workflow's history for the replay tests, when RECORD_HISTORIES=1.

    ``make histories`` sets it; a normal run only replays what is stored, so a
    non-deterministic change to a workflow fails ``tests/test_replay.py``.
    """

    async def record(queue: str, scenario: str, handle: WorkflowHandle[Any, Any]) -> None:
        if os.environ.get("RECORD_HISTORIES") != "1":
            return
        history = await handle.fetch_history()
        path = history_path(queue, scenario)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(history.to_json_dict(), indent=1, sort_keys=True) + "\n")

    return record


_session_status: list[int] = [0]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _session_status[0] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # This process hosts SDK clients and workers; end it the way workers end (see
    # workerkit.exit_process) so a native-thread crash at finalization can't turn a
    # green run red. Everything pytest reports is written by now.
    exit_process(_session_status[0])
