"""Fixtures shared by every test: a real Temporal dev server and worker subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from workerkit import exit_process

from support import (
    RecordHistory,
    WorkerProcess,
    fleet_cli,
    free_port,
    history_path,
    temporal_cli,
)


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """One real Temporal dev server (SQLite in memory) for the whole session."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        dev_server_log_level="error",
        ui=False,
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
def spawn_worker(temporal_address: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``fleet worker ARGS`` against the test server; kill leftovers at teardown."""
    started: list[WorkerProcess] = []

    def spawn(*args: str, env: Mapping[str, str] | None = None) -> WorkerProcess:
        port = free_port()
        full_env = {
            **os.environ,
            "TEMPORAL_ADDRESS": temporal_address,
            "TEMPORAL_NAMESPACE": "default",
            "WORKER_HTTP_PORT": str(port),
            "WORKER_HTTP_HOST": "127.0.0.1",
            "WORKER_LOG_FORMAT": "json",
            "WORKER_SHUTDOWN_TIMEOUT": "20s",
            "ORDERS_LEDGER_PATH": str(tmp_path / "ledger.sqlite3"),
            **(env or {}),
        }
        log_path = tmp_path / f"worker-{len(started)}.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [fleet_cli(), "worker", *args],
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        worker = WorkerProcess(proc=proc, port=port, log_path=log_path)
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait()


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
