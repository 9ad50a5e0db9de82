"""Progressive delivery on the real dev server: ``fleet deploy rollout`` ramps a build in
steps, judges each from the server's data, and rolls a bad build back by itself.

Builds of one queue run as their own ``fleet worker`` processes (``support.builds``), with
orders arriving throughout, as production traffic would:

- A: ``Order`` (PINNED) runs one activity; ``Saga`` (AUTO_UPGRADE) runs one, waits for
  ``go``, then finishes; ``Smoke`` (the queue's gate workflow) returns at once.
- B: a good change (the activity's result names B).
- F: fails every third order (a non-retryable ApplicationError).
- N: an unguarded new first step in ``Saga``: every Saga that moves to N fails its
  workflow task (non-determinism). The queue's gate replays no server history here
  (``replay_sample=0``), as when the executions that would break lie outside the sample.
- S: its gate workflow fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from workerkit._rollout import OPS_TASK_QUEUE, RetireBuildsWorkflow, RetireRequest

from support import WorkerProcess, free_port, start_dev_server, temporal_start
from support.builds import QueueBuilds, queue_name

# slow: each build runs as fleet worker and fleet deploy processes.
pytestmark = pytest.mark.slow

_WORKFLOWS = """
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from workerkit import continue_as_new_on_current_build, new_build_available

BUILD = "{build}"
_ONCE = RetryPolicy(maximum_attempts=1)


@activity.defn
async def work(n: int) -> str:
    return f"{{n}}@{{BUILD}}"


@workflow.defn
class Order:
    @workflow.run
    async def run(self, n: int) -> str:
        if {order_fails}:
            raise ApplicationError(f"order {{n}} refused by build {{BUILD}}", non_retryable=True)
        return await workflow.execute_activity(
            work, n, start_to_close_timeout=timedelta(seconds=10), retry_policy=_ONCE
        )


@workflow.defn
class Saga:
    def __init__(self) -> None:
        self._go = False

    @workflow.signal
    def go(self) -> None:
        self._go = True

    @workflow.run
    async def run(self) -> list[str]:
        done: list[str] = []
        {saga_first}
        done.append(await workflow.execute_activity(
            work, 0, start_to_close_timeout=timedelta(seconds=10)
        ))
        await workflow.wait_condition(lambda: self._go)
        done.append(await workflow.execute_activity(
            work, 1, start_to_close_timeout=timedelta(seconds=10)
        ))
        return done


@workflow.defn
class Ledger:
    # Long-running and PINNED: moves to a newer current build when it continues as new.

    def __init__(self) -> None:
        self._stop = False
        self._pokes = 0

    @workflow.signal
    def poke(self) -> None:
        self._pokes += 1

    @workflow.signal
    def stop(self) -> None:
        self._stop = True

    @workflow.run
    async def run(self, hops: int) -> list[str]:
        await workflow.wait_condition(lambda: self._stop or self._pokes > 0)
        if not self._stop and new_build_available():
            continue_as_new_on_current_build(hops + 1)
        await workflow.wait_condition(lambda: self._stop)
        return [BUILD, str(hops)]


@workflow.defn
class Smoke:
    @workflow.run
    async def run(self) -> str:
        if {smoke_fails}:
            raise ApplicationError("smoke test failed on " + BUILD, non_retryable=True)
        return BUILD
"""

_QUEUE = """
from datetime import timedelta

from temporalio.common import VersioningBehavior
from workerkit import Queue, RolloutPolicy

from rollout.workflows import Ledger, Order, Saga, Smoke, work

QUEUE = Queue(
    name="{queue}",
    workflows=[Order, Saga, Smoke, Ledger],
    activities=[work],
    versioning={{
        Order: VersioningBehavior.PINNED,
        Saga: VersioningBehavior.AUTO_UPGRADE,
        Smoke: VersioningBehavior.PINNED,
        Ledger: VersioningBehavior.PINNED,
    }},
    rollout=RolloutPolicy(
        steps=(50, 100),
        pause=timedelta(seconds=6),
        max_failure_ratio=0.1,
        min_executions=4,
        max_extensions=2,
        gate_workflow="Smoke",
        replay_sample={replay_sample},
        retire_after=timedelta(seconds=1),
    ),
)
"""

_NEW_FIRST_STEP = "await workflow.sleep(timedelta(milliseconds=1))"
BUILDS: dict[str, dict[str, Any]] = {
    "a": {},
    "b": {},
    "f": {"order_fails": "n % 3 == 0"},
    "n": {"saga_first": _NEW_FIRST_STEP, "replay_sample": 0},
    "s": {"smoke_fails": "True"},
}


def _modules(queue: str, build: str) -> dict[str, str]:
    spec: dict[str, Any] = {
        "order_fails": "False",
        "saga_first": "",
        "smoke_fails": "False",
        "replay_sample": 20,
    }
    spec |= BUILDS[build]
    return {
        "workflows": _WORKFLOWS.format(build=build, **spec),
        "queue": _QUEUE.format(queue=queue, replay_sample=spec["replay_sample"]),
    }


@pytest.fixture
def builds(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    temporal_address: str,
    spawn_worker: Callable[..., WorkerProcess],
) -> QueueBuilds:
    queue = queue_name("ro", request.node.name)
    return QueueBuilds(queue, tmp_path / "builds", temporal_address, spawn_worker, _modules)


@contextlib.asynccontextmanager
async def orders(
    client: Client, builds: QueueBuilds, per_second: float = 6
) -> AsyncIterator[list[WorkflowHandle[Any, Any]]]:
    """Start orders at a steady rate while the block runs; yield the handles so far."""
    handles: list[WorkflowHandle[Any, Any]] = []

    async def feed() -> None:
        n = 0
        while True:
            handles.append(await builds.begin(client, "Order", f"order-{n}", n))
            n += 1
            await asyncio.sleep(1 / per_second)

    task = asyncio.ensure_future(feed())
    try:
        yield handles
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def outcomes(handles: list[WorkflowHandle[Any, Any]]) -> dict[str, int]:
    """How the orders ended, waiting up to 30 s for each to close."""
    counts: dict[str, int] = {}
    for handle in handles:
        deadline = time.monotonic() + 30
        while True:
            status = (await handle.describe()).status
            if status != WorkflowExecutionStatus.RUNNING or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        name = status.name if status else "UNKNOWN"
        counts[name] = counts.get(name, 0) + 1
    return counts


def rollout_state(builds: QueueBuilds) -> dict[str, Any]:
    found: dict[str, Any] | None = builds.status()["rollout"]
    assert found is not None
    return found


def rollout_started(builds: QueueBuilds, build: str, *args: str) -> str:
    """Start a rollout of ``build`` without ``--wait``, which must succeed; its output."""
    code, out, err = builds.deploy(build, "rollout", builds.queue, *args)
    assert code == 0, out + err
    return out


async def wait_for_rollout(
    builds: QueueBuilds, done: Callable[[dict[str, Any]], bool], timeout: float = 120
) -> dict[str, Any]:
    """Poll ``fleet deploy status`` until the rollout's state satisfies ``done``."""
    deadline = time.monotonic() + timeout
    while not done(state := rollout_state(builds)):
        assert time.monotonic() < deadline, json.dumps(state)
        await asyncio.sleep(0.5)
    return state


async def wait_for_outcome(builds: QueueBuilds, timeout: float = 120) -> dict[str, Any]:
    return await wait_for_rollout(builds, lambda s: bool(s["outcome"]), timeout)


async def wait_for_step(builds: QueueBuilds, step: int, timeout: float = 60) -> None:
    await wait_for_rollout(builds, lambda s: s["step"] >= step, timeout)


async def test_good_build_goes_to_current_surviving_its_cli_and_a_worker(
    client: Client, builds: QueueBuilds
) -> None:
    q = builds.queue
    worker_a = builds.start("a")
    builds.start("b")
    async with orders(client, builds) as handles:
        # Without --wait the CLI only starts the rollout: it is gone from here on.
        out = rollout_started(builds, "b")
        assert f"rollout of build {q}-b of {q} started: steps 50,100, 6s each" in out
        assert f"fleet deploy status {q}" in out
        # A second rollout of the same queue is refused while this one runs.
        code, _, err = builds.deploy("b", "rollout", q)
        assert code == 3 and f"a rollout of {q} is running" in err, err
        # Kill a worker process that serves the operations queue; start a new one.
        await asyncio.sleep(3)
        worker_a.kill()
        builds.start("a")
        state = await wait_for_outcome(builds)
    assert state["outcome"] == "promoted", state
    # The gate, step 1 judged, the gate again before step 2, the bake at 100% judged.
    seen = [(v["step"], v["outcome"]) for v in state["verdicts"]]
    assert seen == [(0, "passed"), (1, "passed"), (2, "passed"), (3, "passed")], state
    assert "gate workflow Smoke completed" in state["verdicts"][0]["summary"]
    assert builds.status()["current_build_id"] == f"{q}-b"
    ended = await outcomes(handles)
    assert ended.get("FAILED", 0) == 0 and ended.get("RUNNING", 0) == 0, ended
    code, out, _ = builds.deploy("b", "status", q)
    assert code == 0 and f"last rollout, of build {q}-b: promoted" in out, out


async def test_pinned_long_runner_moves_at_continue_as_new_and_old_build_drains(
    client: Client, builds: QueueBuilds
) -> None:
    q = builds.queue
    builds.start("a")
    ledger = await builds.begin(client, "Ledger", "ledger", 0)
    builds.start("b")
    code, out, err = await asyncio.to_thread(
        builds.deploy, "b", "rollout", q, "--min-executions", "0", "--steps", "100", "--wait"
    )
    assert code == 0, out + err
    # Pinned to A, it moves only when it continues as new: poke it so it looks.
    await ledger.signal("poke")
    deadline = time.monotonic() + 30
    while builds.builds()["a"]["status"] != "drained":
        assert time.monotonic() < deadline, builds.builds()
        await asyncio.sleep(1)
    await ledger.signal("stop")
    assert await ledger.result() == ["b", "1"]


async def test_failing_build_is_rolled_back_within_one_step(
    client: Client, builds: QueueBuilds
) -> None:
    q = builds.queue
    builds.start("a")
    builds.start("f")
    async with orders(client, builds) as handles:
        # In a thread: orders keep arriving while the CLI follows the rollout.
        code, out, err = await asyncio.to_thread(builds.deploy, "f", "rollout", q, "--wait")
    assert code == 3, out + err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: rollout of build {q}-f of {q}: rolled back: step 1 (50%)")
    assert "failure_ratio" in last and "> limit 0.1" in last, last
    state = builds.status()
    assert (state["current_build_id"], state["ramping_build_id"]) == (f"{q}-a", None)
    assert state["rollout"]["outcome"] == "rolled_back"
    ended = await outcomes(handles)
    assert ended.get("RUNNING", 0) == 0, ended


async def test_failing_build_made_current_is_replaced_by_the_previous_one_in_its_bake(
    client: Client, builds: QueueBuilds
) -> None:
    q = builds.queue
    builds.start("a")
    builds.start("f")
    async with orders(client, builds) as handles:
        code, out, err = await asyncio.to_thread(
            builds.deploy, "f", "rollout", q, "--steps", "100", "--wait"
        )
    assert code == 3, out + err
    last = err.strip().splitlines()[-1]
    assert "rolled back: bake (100%): failure_ratio" in last, last
    # F was current for its bake; A is current again.
    assert builds.status()["current_build_id"] == f"{q}-a"
    ended = await outcomes(handles)
    assert ended.get("RUNNING", 0) == 0, ended


async def test_a_holding_rollout_waits_for_a_decision(builds: QueueBuilds) -> None:
    q = builds.queue
    builds.start("a")
    builds.start("b")
    # No order arrives: step 1 has no data, is extended twice, then holds.
    rollout_started(builds, "b", "--pause", "2s")
    held = await wait_for_rollout(builds, lambda s: s["phase"] == "holding", 60)
    outcomes_so_far = [v["outcome"] for v in held["verdicts"]]
    assert outcomes_so_far == ["passed", "extended", "extended", "held"], outcomes_so_far
    # A pause is not a decision: it still holds.
    assert builds.deploy("b", "pause", q)[0] == 0
    await asyncio.sleep(3)
    assert rollout_state(builds)["phase"] == "holding"
    assert builds.deploy("b", "resume", q)[0] == 0
    builds.deploy("b", "promote-now", q)
    state = await wait_for_outcome(builds)
    assert state["outcome"] == "promoted", state
    assert builds.status()["current_build_id"] == f"{q}-b"


async def test_non_deterministic_build_is_stopped_before_100(
    client: Client, builds: QueueBuilds
) -> None:
    q = builds.queue
    builds.start("a")
    sagas = [await builds.begin(client, "Saga", f"saga-{i}") for i in range(12)]
    builds.start("n")
    rollout_started(builds, "n", "--min-executions", "0")
    await wait_for_step(builds, 1)
    for saga in sagas:
        await saga.signal("go")
    state = await wait_for_outcome(builds)
    assert state["outcome"] == "rolled_back", state
    assert "step 1 (50%)" in state["reason"] and "failing_workflow_tasks" in state["reason"]
    assert builds.status()["current_build_id"] == f"{q}-a"
    # The Sagas that failed on N move back to A (AUTO_UPGRADE) and finish there.
    results = [await asyncio.wait_for(s.result(), 90) for s in sagas]
    assert all(r == ["0@a", "1@a"] for r in results), results


async def test_gate_workflow_failure_refuses_before_traffic(builds: QueueBuilds) -> None:
    q = builds.queue
    builds.start("a")
    builds.start("s")
    code, out, err = await asyncio.to_thread(builds.deploy, "s", "rollout", q, "--wait")
    assert code == 3, out + err
    assert "refused: gate: gate workflow Smoke failed on build" in err.splitlines()[-1]
    state = builds.status()
    assert (state["current_build_id"], state["ramping_build_id"]) == (f"{q}-a", None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "50,10,100"], "must increase"),
        (["--steps", "0,100"], "within 1..100"),
        (["--steps", "10,50"], "the last must be 100"),
        (["--steps", "ten"], "comma-separated whole percentages"),
        (["--pause", "soon"], "--pause 'soon': not a duration"),
        (["--max-failure-ratio", "1.5"], "--max-failure-ratio 1.5: must be within 0..1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    builds: QueueBuilds, args: list[str], message: str
) -> None:
    code, out, err = builds.deploy("a", "rollout", builds.queue, *args)
    assert code == 2, out + err
    assert err.strip().count("\n") == 0 and message in err, err


def test_unknown_queue_exit_2(builds: QueueBuilds) -> None:
    code, _, err = builds.deploy("a", "rollout", "nosuchqueue")
    assert code == 2 and "nosuchqueue" in err, err


async def test_abort_cancels_the_ramp_and_pause_holds_the_clock(builds: QueueBuilds) -> None:
    q = builds.queue
    builds.start("a")
    builds.start("b")
    rollout_started(builds, "b", "--pause", "10m")
    await wait_for_step(builds, 1)
    code, out, err = builds.deploy("b", "pause", q)
    assert code == 0 and "pause: accepted at step 1" in out, out + err
    code, out, _ = builds.deploy("b", "status", q)
    assert "ramping, step 1 of 2 (50,100), ramp 50% (paused)" in out, out
    code, out, err = builds.deploy("b", "abort", q)
    assert code == 0, out + err
    state = await wait_for_outcome(builds)
    assert state["outcome"] == "aborted" and "aborted by an operator" in state["reason"]
    status = builds.status()
    assert (status["current_build_id"], status["ramping_build_id"]) == (f"{q}-a", None)
    # Nothing runs any more: controls say so.
    code, _, err = builds.deploy("b", "resume", q)
    assert code == 3 and f"no rollout of {q} is running" in err, err


async def test_rollout_survives_a_server_restart(
    request: pytest.FixtureRequest, tmp_path: Path, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    # A server of the test's own, on a file: stopped mid-step and started again on it.
    port, db_file = free_port(), tmp_path / "temporal.sqlite"
    server = start_dev_server(port, db_file=db_file)
    try:
        queue = queue_name("ro", request.node.name)
        builds = QueueBuilds(
            queue,
            tmp_path / "builds",
            f"127.0.0.1:{port}",
            spawn_worker,
            _modules,
        )
        builds.start("a")
        builds.start("b")
        rollout_started(builds, "b", "--min-executions", "0", "--pause", "8s")
        await wait_for_step(builds, 1)
        server.terminate()
        server.wait(timeout=30)
        server = start_dev_server(port, db_file=db_file)
        state = await wait_for_outcome(builds, timeout=180)
        assert state["outcome"] == "promoted", state
        assert builds.status()["current_build_id"] == f"{queue}-b"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_rollout_near_the_version_limit_is_refused(builds: QueueBuilds) -> None:
    q = builds.queue
    builds.start("a")
    builds.start("b")
    code, out, err = builds.deploy("b", "rollout", q, "--version-limit", "6", "--wait")
    assert code == 3, out + err
    last = err.strip().splitlines()[-1]
    assert f"deployment {q} holds 2 of the server's 6 versions: retire drained builds" in last
    assert builds.status()["current_build_id"] == f"{q}-a"


async def test_retire_builds_deletes_a_drained_build_once_its_workers_stopped(
    request: pytest.FixtureRequest, tmp_path: Path, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    # The server forgets a stopped worker's pollers after PollerHistoryTTL (5 minutes by
    # default): seconds on this server of the test's own, so a stopped build can be deleted.
    port = free_port()
    server = start_dev_server(
        port,
        dynamic_config=[
            'matching.PollerHistoryTTL="5s"',
            'matching.wv.VersionDrainageStatusVisibilityGracePeriod="2s"',
            'matching.wv.VersionDrainageStatusRefreshInterval="1s"',
        ],
    )
    try:
        queue = queue_name("ro", request.node.name)
        address = f"127.0.0.1:{port}"
        builds = QueueBuilds(queue, tmp_path / "builds", address, spawn_worker, _modules)
        worker_a = builds.start("a")
        builds.start("b")
        code, out, err = builds.deploy("b", "promote", queue, "--wait-pollers", "30s")
        assert code == 0, out + err
        worker_a.signal()
        assert worker_a.wait_exit() == 0
        client = await Client.connect(address)
        retired = await client.execute_workflow(
            RetireBuildsWorkflow.run,
            RetireRequest(
                deployment=queue,
                task_queue=builds.task_queue,
                keep=[builds.build_id("b")],
                after_seconds=0,
                interval_seconds=2,
                passes=30,
            ),
            id=f"retire-{queue}",
            task_queue=OPS_TASK_QUEUE,
        )
        assert retired.retired == [builds.build_id("a")], retired
        assert set(builds.builds()) == {"b"}
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize(
    ("workflow_type", "raw_input", "message"),
    [
        ("fleet.Typo", "{}", "queue 'fleet operations' has no workflow 'fleet.Typo'"),
        ("fleet.Rollout", '{"queue": 1}', "RolloutRequest input is invalid: queue: expected"),
        ("fleet.Rollout", '"x"', "RolloutRequest input is invalid: expected an object"),
    ],
)
async def test_bad_starts_on_the_operations_queue_fail_at_once(
    client: Client,
    builds: QueueBuilds,
    temporal_address: str,
    workflow_type: str,
    raw_input: str,
    message: str,
) -> None:
    # As an outside client would: the official temporal CLI, no fleet in between.
    builds.start("a")
    workflow_id = f"{builds.queue}-{workflow_type}-{len(raw_input)}"
    started = temporal_start(
        temporal_address, OPS_TASK_QUEUE, workflow_type, workflow_id, raw_input
    )
    assert started.returncode == 0, started.stderr
    handle = client.get_workflow_handle(workflow_id)
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), 20)
    assert message in str(failed.value.cause), failed.value.cause
