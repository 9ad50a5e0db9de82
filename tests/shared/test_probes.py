"""Probes that tell the truth, and an HTTP port that holds up: the worker as a real process.

- ``/healthz`` fails while the event loop is blocked (a sync call in an ``async def``
  activity) for longer than ``WORKER_LOOP_STALL_TIMEOUT``, and recovers with the loop;
- ``/readyz`` turns 503, naming the reason, while the Temporal server does not answer, and
  back to 200 once it does;
- methods other than GET and HEAD get 405, HEAD gets no body, a client that never finishes
  its request is cut off, and idle connections cannot take every thread.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from support import WorkerProcess, free_port, http_get, start_dev_server

# slow: fleet worker processes, and a dev server of its own stopped.
pytestmark = pytest.mark.slow

SpawnWorker = Callable[..., WorkerProcess]

# A queue whose one activity blocks the event loop: `time.sleep` in an `async def`.
_WEDGE = """
import time
from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def block(seconds: float) -> str:
    time.sleep(seconds)  # the bug under test: a sync call on the event loop
    return "unblocked"


@workflow.defn
class WedgeWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> str:
        return await workflow.execute_activity(
            block, seconds, start_to_close_timeout=timedelta(seconds=60)
        )
"""
# The declaration in a module of its own: workflow modules are re-imported in the sandbox.
_QUEUE = """
from temporalio.common import VersioningBehavior
from workerkit import Queue

from wedgeapp.flows import WedgeWorkflow, block

QUEUE = Queue(
    name="wedge",
    workflows=[WedgeWorkflow],
    activities=[block],
    versioning=VersioningBehavior.PINNED,
)
"""


@pytest.fixture
def wedge_path(tmp_path: Path) -> Path:
    home = tmp_path / "wedge-site"
    (home / "wedgeapp").mkdir(parents=True)
    (home / "wedgeapp" / "__init__.py").write_text("")
    (home / "wedgeapp" / "flows.py").write_text(_WEDGE)
    (home / "wedgeapp" / "queue.py").write_text(_QUEUE)
    dist = home / "wedgeapp-0.0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wedgeapp\nVersion: 0.0.0\n")
    (dist / "entry_points.txt").write_text("[workerkit.queues]\nwedge = wedgeapp.queue:QUEUE\n")
    return home


def wait_for_status(worker: WorkerProcess, path: str, status: int, timeout: float) -> float:
    """Poll ``path`` until it answers ``status``; return how long that took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if http_get(worker.url(path), timeout=1.0)[0] == status:
            return time.monotonic() - started
        assert worker.proc.poll() is None, worker.log()
        time.sleep(0.2)
    raise AssertionError(f"{path} never answered {status} within {timeout}s:\n{worker.log()}")


async def test_healthz_fails_while_the_event_loop_is_blocked(
    spawn_worker: SpawnWorker, client: Client, wedge_path: Path
) -> None:
    worker = spawn_worker(
        "wedge", env={"PYTHONPATH": str(wedge_path), "WORKER_LOOP_STALL_TIMEOUT": "2s"}
    )
    worker.wait_ready()
    assert http_get(worker.url("/healthz")) == (200, "ok\n")
    handle = await client.start_workflow(
        "WedgeWorkflow", 8.0, id=f"wedge-{time.monotonic_ns()}", task_queue="wedge-v1"
    )
    wait_for_status(worker, "/healthz", 503, timeout=10)
    status, body = http_get(worker.url("/healthz"))
    assert status == 503 and body.startswith("event loop stalled for ")
    assert "(threshold 2s)" in body
    # The loop runs again once the activity returns: alive again, and the work is done.
    wait_for_status(worker, "/healthz", 200, timeout=20)
    assert await handle.result() == "unblocked"


@pytest.fixture
def own_server() -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start (and restart) a dev server of this test's own on one fixed port."""
    port = free_port()
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = start_dev_server(port)
        proc.port = port  # type: ignore[attr-defined]
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.usefixtures("fixture_queue")
def test_readyz_follows_the_server(
    spawn_worker: SpawnWorker, own_server: Callable[[], subprocess.Popen[bytes]]
) -> None:
    server = own_server()
    port = server.port  # type: ignore[attr-defined]
    worker = spawn_worker(
        "fixture",
        env={"TEMPORAL_ADDRESS": f"127.0.0.1:{port}", "WORKER_SERVER_CHECK_INTERVAL": "1s"},
    )
    worker.wait_ready(timeout=60)

    server.kill()
    server.wait()
    # Documented: two failed checks, each up to one interval: 503 within 3 intervals.
    took = wait_for_status(worker, "/readyz", 503, timeout=15)
    status, body = http_get(worker.url("/readyz"))
    assert status == 503 and body.startswith("cannot reach the Temporal server"), body
    assert http_get(worker.url("/healthz"))[0] == 200  # alive: a restart would not help
    assert took < 10, took

    own_server()  # the same port again
    wait_for_status(worker, "/readyz", 200, timeout=60)
    assert http_get(worker.url("/readyz")) == (200, "polling\n")
    assert "ready again: the server answers" in worker.log()


@pytest.mark.usefixtures("fixture_queue")
def test_http_methods_head_and_connection_limits(spawn_worker: SpawnWorker) -> None:
    # No server at all: the HTTP port serves from the first moment, whatever the connection.
    worker = spawn_worker("fixture", env={"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"})
    wait_for_status(worker, "/healthz", 200, timeout=30)

    conn = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=5)
    conn.request("POST", "/readyz", body=b"x")
    resp = conn.getresponse()
    assert (resp.status, resp.getheader("Allow"), resp.read()) == (
        405,
        "GET, HEAD",
        b"method not allowed\n",
    )
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=5)
    conn.request("HEAD", "/healthz")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Length") == "3"
    assert resp.read() == b""
    conn.close()

    # 200 connections that never send a request: at most 64 get a thread, the others are
    # closed at once, and a probe after them is still answered once the idle ones time out.
    idle = [socket.create_connection(("127.0.0.1", worker.port), timeout=5) for _ in range(200)]
    try:
        time.sleep(1.0)
        closed = 0
        for sock in idle:
            sock.settimeout(0.05)
            with contextlib.suppress(TimeoutError):
                closed += sock.recv(1) == b""
        assert closed >= 200 - 64, closed
        # Every slot is held by an idle client: probes wait for the 10 s request timeout.
        assert wait_for_status(worker, "/healthz", 200, timeout=30) < 25
    finally:
        for sock in idle:
            sock.close()
    assert worker.proc.poll() is None
