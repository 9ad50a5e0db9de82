"""``fleet status``: queues and workers in one view, on a dev server with worker heartbeats on
(as ``make dev`` and the compose stack run it), and a clear line for what cannot be read."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.common import Priority

from support import WorkerProcess, fleet_cli, free_port
from support.processes import stop_process
from support.temporal import start_dev_server

# slow: a dev server and fleet worker processes of the test's own.
pytestmark = pytest.mark.slow

HEARTBEATS = ("frontend.WorkerHeartbeatsEnabled=true", "frontend.ListWorkersEnabled=true")
QUEUE = "notifications"
TASK_QUEUE = "notifications-v1"


@pytest.fixture
def server() -> Iterator[str]:
    port = free_port()
    proc = start_dev_server(port, dynamic_config=HEARTBEATS)
    yield f"127.0.0.1:{port}"
    stop_process(proc)


@pytest.fixture
def server_without_heartbeats() -> Iterator[str]:
    """A server that keeps no worker list, as a self-hosted one without the settings."""
    port = free_port()
    proc = start_dev_server(
        port,
        dynamic_config=[s.replace("=true", "=false") for s in HEARTBEATS],
    )
    yield f"127.0.0.1:{port}"
    stop_process(proc)


def status(address: str, *args: str, connect: str = "30s") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [fleet_cli(), "status", *args, "--connect-timeout", connect],
        env={"PATH": str(Path(fleet_cli()).parent), "TEMPORAL_ADDRESS": address},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def status_json(address: str, *args: str) -> dict[str, Any]:
    done = status(address, QUEUE, "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def until(
    read: Callable[[], dict[str, Any]], holds: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        seen = read()
        if holds(seen) or time.monotonic() > deadline:
            return seen
        time.sleep(1)


async def test_queues_backlog_and_workers_with_a_stale_one_flagged(
    server: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    env = {"TEMPORAL_ADDRESS": server, "WORKER_HEARTBEAT_INTERVAL": "1s"}
    worker = spawn_worker(QUEUE, env=env)
    worker.wait_ready(timeout=60)
    seen = until(
        lambda: status_json(server),
        lambda s: any(w["task_queue"] == TASK_QUEUE for w in s["workers"]),
    )
    (queue,) = seen["queues"]
    assert (queue["name"], queue["task_queue"], queue["pollers"]) == (QUEUE, TASK_QUEUE, 1)
    assert set(queue["backlog"]) == {"workflow", "activity"}
    assert [s["id"] for s in queue["schedules"]] == ["notifications-digest"]
    assert queue["schedules"][0]["synced"] is False  # nobody ran fleet schedules sync here
    (ours,) = [w for w in seen["workers"] if w["task_queue"] == TASK_QUEUE]
    assert ours["status"] == "running" and not ours["stale"]
    assert ours["process_id"] == str(worker.proc.pid)
    assert ours["slots"]["activity"][0] == 0 and ours["slots"]["activity"][1] > 0
    assert seen["problems"] == []

    # The worker dies without a word; work queues up behind it, one start at priority 1.
    worker.kill()
    client = await Client.connect(server)
    for n in range(3):
        await client.start_workflow(
            "DigestWorkflow",
            {"recipient": f"r{n}"},
            id=f"status-{uuid.uuid4().hex[:8]}",
            task_queue=TASK_QUEUE,
            priority=Priority(priority_key=1 if n == 0 else 3),
        )
    await asyncio.sleep(3)
    # The server's statistics are approximate and converge within seconds (a task handed to
    # the dead worker's last poll comes back once that poll times out).
    seen = until(
        lambda: status_json(server, "--stale-after", "2s"),
        lambda s: s["queues"][0]["backlog"]["workflow"]["count"] == 3,
    )
    (queue,) = seen["queues"]
    assert queue["backlog"]["workflow"]["count"] == 3
    assert queue["backlog"]["workflow"]["oldest_seconds"] >= 1
    assert queue["open_executions"] == 3
    by_priority = queue["backlog_by_priority"]
    assert by_priority["1"]["count"] == 1 and by_priority["3"]["count"] == 2, by_priority
    (dead,) = [w for w in seen["workers"] if w["task_queue"] == TASK_QUEUE]
    assert dead["stale"] and dead["seconds_since_heartbeat"] >= 2

    text = status(server, QUEUE, "--stale-after", "2s").stdout
    assert "STALE: no heartbeat" in text
    assert "backlog: workflow 3 (oldest " in text and "by priority 1: 1, 3: 2" in text


def test_a_part_it_cannot_read_is_one_line(
    server_without_heartbeats: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    # The server lists no heartbeats: the view says which settings are missing.
    address = server_without_heartbeats
    env = {"TEMPORAL_ADDRESS": address, "WORKER_HEARTBEAT_INTERVAL": "1s"}
    spawn_worker(QUEUE, env=env).wait_ready(timeout=60)
    deadline = time.monotonic() + 30
    while True:  # until the server lists the worker's pollers
        done = status(address, QUEUE)
        assert done.returncode == 0, done.stderr
        if "PROBLEMS\n" in done.stdout or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert "PROBLEMS\n" in done.stdout, done.stdout
    problems = [line.strip() for line in done.stdout.split("PROBLEMS\n", 1)[1].splitlines()]
    assert [p for p in problems if p] == [
        "workers: pollers but no worker heartbeats: enable frontend.WorkerHeartbeatsEnabled "
        "and frontend.ListWorkersEnabled in the server's dynamic config (or the workers started "
        "less than a heartbeat interval, WORKER_HEARTBEAT_INTERVAL, ago)"
    ]
    # No server at all: one line and exit 1, no traceback.
    gone = status(f"127.0.0.1:{free_port()}", QUEUE, connect="1s")
    assert gone.returncode == 1
    assert gone.stderr.strip().splitlines()[-1].startswith("error: could not connect to Temporal")
    assert "Traceback" not in gone.stderr
    # Bad usage: one line, exit 2.
    bad = status(address, QUEUE, "--every", "soon")
    assert (
        bad.returncode == 2
        and bad.stderr.strip() == "error: --every 'soon' is not a duration (e.g. 30s, 5m)"
    )
