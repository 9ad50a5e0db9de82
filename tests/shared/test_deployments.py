"""Rainbow deploys on the real dev server: builds A, B and C of one queue, as real processes.

Each build is a directory holding the queue's package and an entry point for it (the same
registration an installed service has), put on ``PYTHONPATH`` of its own ``fleet worker``
and ``fleet deploy`` processes, so every build runs its own code as an image would:

- A: ``ShortFlow`` (PINNED) and ``LongFlow`` (AUTO_UPGRADE): a step, wait for ``go``, a step.
- B: an incompatible change to ``ShortFlow`` (a new first step), and a new step in
  ``LongFlow`` guarded by ``workflow.patched()``.
- C: an unguarded new first step in ``LongFlow``: its replay gate must refuse it.
- V2: B's code with the queue's version bumped: the task queue changes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from support import WorkerProcess, http_get
from support.builds import QueueBuilds, queue_name

# slow: each build runs as fleet worker and fleet deploy processes.
pytestmark = pytest.mark.slow

_WORKFLOWS = """
from datetime import timedelta

from temporalio import activity, workflow

BUILD = "{build}"


@activity.defn
async def step(name: str) -> str:
    return f"{{name}}@{{BUILD}}"


async def _step(name: str) -> str:
    return await workflow.execute_activity(
        step, name, start_to_close_timeout=timedelta(seconds=10)
    )


@workflow.defn
class ShortFlow:
    def __init__(self) -> None:
        self._go = False

    @workflow.signal
    def go(self) -> None:
        self._go = True

    @workflow.run
    async def run(self) -> list[str]:
        done: list[str] = []
        {short_first}
        done.append(await _step("first"))
        await workflow.wait_condition(lambda: self._go)
        done.append(await _step("last"))
        return done


@workflow.defn
class LongFlow:
    def __init__(self) -> None:
        self._go = False

    @workflow.signal
    def go(self) -> None:
        self._go = True

    @workflow.run
    async def run(self) -> list[str]:
        done: list[str] = []
        {long_first}
        done.append(await _step("first"))
        await workflow.wait_condition(lambda: self._go)
        {long_after_wait}
        done.append(await _step("last"))
        return done
"""

_QUEUE = """
from temporalio.common import VersioningBehavior
from workerkit import Queue

from rollout.workflows import LongFlow, ShortFlow, step

QUEUE = Queue(
    name="{queue}",
    version={version},
    workflows=[ShortFlow, LongFlow],
    activities=[step],
    versioning={{
        ShortFlow: VersioningBehavior.PINNED,
        LongFlow: VersioningBehavior.AUTO_UPGRADE,
    }},
)
"""

# A timer, then a step: a command the old history does not have (a different activity
# argument alone would replay: the SDK matches activities by type and sequence).
_NEW_FIRST_STEP = (
    'await workflow.sleep(timedelta(milliseconds=1))\n        done.append(await _step("audit"))'
)
_GUARDED_STEP = 'if workflow.patched("audit"):\n            done.append(await _step("audit"))'

BUILDS: dict[str, dict[str, Any]] = {
    "a": {},
    "b": {"short_first": _NEW_FIRST_STEP, "long_after_wait": _GUARDED_STEP},
    "c": {"long_first": _NEW_FIRST_STEP},
    "v2": {"short_first": _NEW_FIRST_STEP, "long_after_wait": _GUARDED_STEP, "version": 2},
}


def _modules(queue: str, build: str) -> dict[str, str]:
    spec = {"short_first": "", "long_first": "", "long_after_wait": "", "version": 1}
    spec |= BUILDS[build]
    return {
        "workflows": _WORKFLOWS.format(build=build, **spec),
        "queue": _QUEUE.format(queue=queue, version=spec["version"]),
    }


@pytest.fixture
def rollout(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    temporal_address: str,
    spawn_worker: Callable[..., WorkerProcess],
) -> QueueBuilds:
    queue = queue_name("rollout", request.node.name)
    return QueueBuilds(
        queue,
        tmp_path / "builds",
        temporal_address,
        spawn_worker,
        _modules,
    )


async def wait_for_activity(handle: WorkflowHandle[Any, Any], count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        history = await handle.fetch_history()
        completed = [
            e
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        ]
        if len(completed) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id}: fewer than {count} activities completed in 30s")


async def workflow_task_failures(handle: WorkflowHandle[Any, Any]) -> int:
    history = await handle.fetch_history()
    return sum(
        1 for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    )


async def test_rainbow_deploy_pinned_stays_auto_upgrade_moves_bad_build_refused(
    client: Client, rollout: QueueBuilds
) -> None:
    q = rollout.queue
    # Build A: the first build of a deployment that was never routed makes itself current.
    worker_a = rollout.start("a")
    assert rollout.status()["current_build_id"] == f"{q}-a"
    code, out, _ = rollout.deploy("a", "promote", q)
    assert (code, out.strip()) == (0, f"build {q}-a of {q} is already current")

    pinned = await rollout.begin(client, "ShortFlow", "pinned")
    upgrading = await rollout.begin(client, "LongFlow", "upgrading")
    await wait_for_activity(pinned, 1)
    await wait_for_activity(upgrading, 1)

    # Build B beside A; promote it from B's own code: pollers, then the replay gate.
    rollout.start("b")
    code, out, err = rollout.deploy("b", "promote", q, "--wait-pollers", "30s")
    assert code == 0, out + err
    assert "replay gate passed: 0 stored and 1 server histories replayed, 0 pinned" in out
    assert f"build {q}-b of {q} is now current (was {q}-a)" in out
    code, out, _ = rollout.deploy("b", "promote", q)
    assert (code, out.strip()) == (0, f"build {q}-b of {q} is already current")

    fresh = await rollout.begin(client, "ShortFlow", "fresh")
    builds = rollout.builds()
    assert (builds["a"]["status"], builds["b"]["status"]) == ("draining", "current")
    assert builds["a"]["pollers"] == 1 and builds["b"]["pollers"] == 1

    # A is still needed by its pinned execution: retiring it is refused; B is current.
    code, _, err = rollout.deploy("b", "retire", q, f"{q}-a")
    assert code == 3 and "still draining" in err
    code, _, err = rollout.deploy("b", "retire", q, f"{q}-b")
    assert code == 3 and "is current" in err

    for handle in (pinned, upgrading, fresh):
        await handle.signal("go")
    # PINNED finished on A with A's code; AUTO_UPGRADE moved to B and took the patched
    # branch there; the new start ran B's code from its first task.
    assert await pinned.result() == ["first@a", "last@a"]
    assert await upgrading.result() == ["first@a", "audit@b", "last@b"]
    assert await fresh.result() == ["audit@b", "first@b", "last@b"]
    for handle in (pinned, upgrading, fresh):
        assert await workflow_task_failures(handle) == 0, handle.id

    # Nothing is pinned to A any more: the server reports it drained, so it may go.
    code, out, err = rollout.deploy("b", "retire", q, f"{q}-a", "--wait", "90s")
    assert code == 0, out + err
    assert "is drained" in out
    worker_a.signal()
    assert worker_a.wait_exit() == 0
    assert rollout.builds()["a"]["status"] == "drained"

    # Build C changes LongFlow without patched(): an open LongFlow on B would break on it.
    open_upgrading = await rollout.begin(client, "LongFlow", "open")
    await wait_for_activity(open_upgrading, 1)
    rollout.start("c")
    code, out, err = rollout.deploy("c", "promote", q, "--wait-pollers", "30s")
    assert code == 3, out + err
    assert "replay gate FAILED" in out
    assert f"LongFlow {q}-open" in err and "ondeterminism" in err, err
    assert rollout.status()["current_build_id"] == f"{q}-b"

    # Promoting a build from another build's code is refused before anything is asked.
    code, _, err = rollout.deploy("c", "promote", q, "--build-id", f"{q}-b")
    assert code == 2 and "the replay gate runs the code installed here" in err

    await open_upgrading.signal("go")
    assert await open_upgrading.result() == ["first@b", "audit@b", "last@b"]


async def test_ramp_then_rollback(client: Client, rollout: QueueBuilds) -> None:
    q = rollout.queue
    worker_a = rollout.start("a")
    rollout.start("b")
    # The worker shows the build it runs: in /metrics and in its log.
    metrics = http_get(worker_a.url("/metrics"))[1]
    assert (
        f'workerkit_worker_build_info{{build_id="{q}-a",deployment="{q}",'
        f'task_queue="{q}-v1",versioned="true"}} 1.0'
    ) in metrics
    ready = [json.loads(line) for line in worker_a.log().splitlines() if '"worker ready"' in line]
    assert ready and (ready[0]["build_id"], ready[0]["versioned"]) == (f"{q}-a", True)
    code, out, err = rollout.deploy("b", "promote", q, "--ramp", "30")
    assert code == 0, out + err
    state = rollout.status()
    assert (state["current_build_id"], state["ramping_build_id"]) == (f"{q}-a", f"{q}-b")
    assert state["ramp_percentage"] == 30
    # While B ramps, another build is refused before its gate: one ramp at a time.
    rollout.start("c")
    code, out, err = rollout.deploy("c", "promote", q, "--wait-pollers", "30s")
    assert code == 3, out + err
    assert f"build {q}-b is ramping at 30%: roll it back (fleet deploy rollback {q})" in err
    assert "replay gate" not in out
    assert rollout.status()["ramping_build_id"] == f"{q}-b"

    code, out, _ = rollout.deploy("b", "rollback", q)
    assert code == 0 and f"ramp of build {q}-b of {q} cancelled" in out
    assert rollout.status()["ramping_build_id"] is None

    code, out, err = rollout.deploy("b", "promote", q)
    assert code == 0, out + err
    code, out, err = rollout.deploy("b", "rollback", q)
    assert code == 0, out + err
    assert f"build {q}-a is current again (was {q}-b)" in out
    assert rollout.status()["current_build_id"] == f"{q}-a"

    after = await rollout.begin(client, "ShortFlow", "after-rollback")
    await wait_for_activity(after, 1)
    await after.signal("go")
    assert await after.result() == ["first@a", "last@a"]


async def test_queue_version_bump_is_refused_at_promotion(rollout: QueueBuilds) -> None:
    # A build that polls <queue>-v2 only would strand the executions on <queue>-v1: with
    # Worker Versioning the version stays, and such a build is never made current.
    q = rollout.queue
    rollout.start("a")
    rollout.start("v2")
    code, out, err = rollout.deploy("v2", "promote", q, "--wait-pollers", "30s")
    assert code == 3, out + err
    assert f"build {q}-v2 does not poll {q}-v1, which current build {q}-a polls" in err, err
    assert rollout.status()["current_build_id"] == f"{q}-a"


async def test_promote_without_pollers_names_the_build(rollout: QueueBuilds) -> None:
    code, out, err = rollout.deploy("a", "promote", rollout.queue, "--wait-pollers", "1s")
    assert code == 1, out + err
    assert f"build {rollout.queue}-a" in err and "start its workers first" in err
