"""The worker as a real process: probes, metrics, connection retry, signals and exit codes."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from workerkit._process_metrics import memory_limit_bytes

from support import (
    WorkerProcess,
    free_port,
    http_get,
    start_dev_server,
    workdir_database,
)
from support.fixture_queue import (
    Approval,
    FixtureWorkflow,
    Ledger,
    Parcel,
    Stage,
    new_parcel,
    wait_for_stage,
)

# slow: fleet worker processes, signalled and killed. Each runs the fixture queue.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fixture_queue")]

SpawnWorker = Callable[..., WorkerProcess]


async def start_approved(client: Client, parcel: Parcel) -> WorkflowHandle[Any, Any]:
    handle = await client.start_workflow(
        FixtureWorkflow.run, parcel, id=f"parcel-{parcel.parcel_id}", task_queue="fixture-v1"
    )
    await handle.signal(FixtureWorkflow.approve, Approval("test"))
    return handle


def log_events(worker: WorkerProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]


async def test_probes_and_metrics_after_a_workflow(
    spawn_worker: SpawnWorker, client: Client
) -> None:
    worker = spawn_worker("fixture")
    worker.wait_ready()
    assert http_get(worker.url("/healthz")) == (200, "ok\n")
    assert http_get(worker.url("/readyz")) == (200, "polling\n")
    assert http_get(worker.url("/nope"))[0] == 404

    await (await start_approved(client, new_parcel("proc"))).result()
    status, metrics = http_get(worker.url("/metrics"))
    assert status == 200
    # The SDK's own metrics, with its default naming: temporal_ prefix, no _total, ms buckets.
    assert re.search(r'^temporal_workflow_completed\{[^}]*task_queue="fixture-v1"', metrics, re.M)
    assert re.search(r'^temporal_activity_execution_latency_bucket\{[^}]*le="100"', metrics, re.M)
    assert "temporal_workflow_completed_total" not in metrics
    # The project's own metrics, from the interceptors.
    assert re.search(
        r'^workerkit_workflow_executions_total\{outcome="completed",task_queue="fixture-v1",'
        r'workflow_type="FixtureWorkflow"\} [1-9]',
        metrics,
        re.M,
    )
    assert re.search(
        r'^workerkit_activity_duration_seconds_count\{activity_type="pack",'
        r'outcome="completed",task_queue="fixture-v1"\} [1-9]',
        metrics,
        re.M,
    )
    # Structured logs name the execution.
    completed = [e for e in log_events(worker) if e["msg"] == "workflow completed"]
    assert completed and completed[0]["task_queue"] == "fixture-v1"
    assert {"workflow_id", "run_id", "duration_ms"} <= completed[0].keys()
    # Library chatter stays below the worker's level (Alembic's lines on each schema check).
    assert not [e for e in log_events(worker) if e["logger"].startswith("alembic")]


def gauge(metrics: str, name: str) -> float | None:
    found = re.search(rf"^{name} (\S+)$", metrics, re.M)
    return float(found[1]) if found else None


def test_metrics_show_threads_and_the_container_memory_limit(spawn_worker: SpawnWorker) -> None:
    """Threads (the SDK core's too) and the cgroup's memory limit, beside RSS: what a leak
    and an approaching OOM kill are seen by (the queue dashboard, the memory alerts)."""
    limit = 768 * 2**20
    limited = spawn_worker("fixture", memory_limit=limit)
    unlimited = spawn_worker("fixture")
    for worker in (limited, unlimited):
        worker.wait_ready()
    metrics = http_get(limited.url("/metrics"))[1]
    assert gauge(metrics, "workerkit_memory_limit_bytes") == limit
    assert gauge(metrics, "process_resident_memory_bytes")
    threads = gauge(metrics, "workerkit_process_threads")
    status = Path(f"/proc/{limited.proc.pid}/status").read_text()
    now = int(re.search(r"^Threads:\s+(\d+)", status, re.M)[1])  # type: ignore[index]
    # Python's threading module sees one or two; the SDK core runs its own pool.
    assert threads is not None and threads > 4 and abs(threads - now) <= 4, (threads, now)
    # Without a cgroup limit of its own the worker shows the limit it inherits, if any.
    inherited = memory_limit_bytes()
    assert gauge(http_get(unlimited.url("/metrics"))[1], "workerkit_memory_limit_bytes") == (
        None if inherited is None else float(inherited)
    )


async def test_sigterm_lets_the_running_activity_finish_and_exits_0(
    spawn_worker: SpawnWorker, client: Client, tmp_path: Path
) -> None:
    worker = spawn_worker("fixture", env={"FIXTURE_PACK_SECONDS_PER_UNIT": "0.5"})
    worker.wait_ready()
    parcel = new_parcel("proc", units=6)  # packing takes about 3 s
    handle = await start_approved(client, parcel)
    await wait_for_stage(handle, Stage.PACKING)
    await asyncio.sleep(0.3)
    worker.signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    assert http_get(worker.url("/readyz")) == (503, "draining\n")
    assert await asyncio.to_thread(worker.wait_exit, 30) == 0
    assert "shipped" in Ledger(workdir_database(tmp_path)).events(parcel.parcel_id)
    assert "worker stopped cleanly" in worker.log()

    # Nothing was lost: a new worker finishes the workflow without shipping twice.
    spawn_worker("fixture").wait_ready()
    result = await client.get_workflow_handle_for(FixtureWorkflow.run, handle.id).result()
    assert result.tracking_number.startswith("trk-")
    assert Ledger(workdir_database(tmp_path)).events(parcel.parcel_id).count("shipped") == 1


async def test_second_signal_exits_promptly(spawn_worker: SpawnWorker, client: Client) -> None:
    worker = spawn_worker("fixture", env={"FIXTURE_PACK_SECONDS_PER_UNIT": "5"})
    worker.wait_ready()
    handle = await start_approved(client, new_parcel("proc", units=10))
    await wait_for_stage(handle, Stage.PACKING)
    worker.signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    assert worker.proc.poll() is None, "the first signal must wait for the activity"
    stopped = time.monotonic()
    worker.signal(signal.SIGINT)
    assert await asyncio.to_thread(worker.wait_exit, 10) == 130
    assert time.monotonic() - stopped < 5


def test_stop_exits_0_every_time(spawn_worker: SpawnWorker) -> None:
    # Guards against the SDK's native threads crashing the interpreter at finalization.
    codes = []
    for _ in range(6):
        worker = spawn_worker("fixture")
        worker.wait_ready()
        worker.signal(signal.SIGTERM)
        codes.append(worker.wait_exit())
    assert codes == [0] * 6


def test_waits_for_a_server_that_comes_up_later(spawn_worker: SpawnWorker) -> None:
    port = free_port()
    worker = spawn_worker("fixture", env={"TEMPORAL_ADDRESS": f"127.0.0.1:{port}"})
    deadline = time.monotonic() + 30
    while http_get(worker.url("/healthz"))[0] != 200:  # alive before any server exists
        assert worker.proc.poll() is None and time.monotonic() < deadline, worker.log()
        time.sleep(0.1)
    assert http_get(worker.url("/readyz")) == (503, "starting\n")
    server = start_dev_server(port)
    try:
        worker.wait_ready(timeout=60)
        assert any(e["msg"] == "Temporal not reachable yet, retrying" for e in log_events(worker))
        worker.signal(signal.SIGTERM)
        assert worker.wait_exit() == 0
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_stop_during_start_up_exits_0_at_once(spawn_worker: SpawnWorker) -> None:
    worker = spawn_worker("fixture", env={"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"})
    deadline = time.monotonic() + 30
    while "Temporal not reachable yet" not in worker.log():  # still connecting
        assert worker.proc.poll() is None and time.monotonic() < deadline, worker.log()
        time.sleep(0.1)
    stopped = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit(timeout=10) == 0
    assert time.monotonic() - stopped < 3
    assert any(e["msg"] == "stopped before connecting" for e in log_events(worker))


def test_gives_up_connecting_after_the_deadline(spawn_worker: SpawnWorker) -> None:
    worker = spawn_worker(
        "fixture",
        env={
            "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "WORKER_CONNECT_TIMEOUT": "1s",
        },
    )
    assert worker.wait_exit() == 1
    errors = [e for e in log_events(worker) if e["level"] == "error"]
    assert errors and errors[-1]["msg"].startswith("could not connect to Temporal at 127.0.0.1:")


def test_fatal_worker_error_exits_non_zero(spawn_worker: SpawnWorker) -> None:
    worker = spawn_worker("fixture", env={"TEMPORAL_NAMESPACE": "no-such-namespace"})
    assert worker.wait_exit() == 1
    assert http_get(worker.url("/readyz"))[0] == 0  # the port is closed with the process
    assert any(e["msg"] == "worker failed" for e in log_events(worker)), worker.log()


def test_bad_service_setting_exits_2_naming_the_variable(spawn_worker: SpawnWorker) -> None:
    worker = spawn_worker("fixture", env={"FIXTURE_PACK_SECONDS_PER_UNIT": "slow"})
    assert worker.wait_exit() == 2
    errors = [e["msg"] for e in log_events(worker) if e["level"] == "error"]
    assert errors == ["FIXTURE_PACK_SECONDS_PER_UNIT='slow' is invalid: expected a number >= 0"]
