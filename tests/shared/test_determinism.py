"""The determinism safety net: a workflow that reads the wall clock or the process's random
generator is caught before production, though production runs workflows unsandboxed.

A production worker (``WORKER_WORKFLOW_SANDBOX`` unset) runs such a workflow, so what stops
the code from reaching production is what runs sandboxed whatever the worker's setting: the
test suite's worker (``support.in_process_worker``, which records the stored histories too)
fails the workflow task that makes the call at once, and so does ``make dev``'s; the replay
gate a build passes before it becomes current fails on the call too.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.common import VersioningBehavior
from workerkit import Queue, WorkerSettings, build_worker
from workerkit._replay_gate import replay_gate

from nondeterministic import DiceWorkflow, WallClockWorkflow

from support import in_process_worker

QUEUE = Queue(
    name="determinism",
    workflows=[WallClockWorkflow, DiceWorkflow],
    versioning=VersioningBehavior.AUTO_UPGRADE,
)
CASES = [(WallClockWorkflow, "datetime.datetime.now"), (DiceWorkflow, "random.random")]


async def first_task_failure(client: Client, workflow_id: str, within_s: float = 10) -> str:
    """The message of the execution's first failed workflow task, once there is one."""
    handle = client.get_workflow_handle(workflow_id)
    for _ in range(int(within_s * 10)):
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                return event.workflow_task_failed_event_attributes.failure.message
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id}: no failed workflow task within {within_s:g}s")


@pytest.mark.parametrize(("workflow_class", "call"), CASES)
async def test_the_test_suites_worker_fails_the_task_that_makes_the_call(
    client: Client, workflow_class: type, call: str
) -> None:
    workflow_id = f"det-{uuid.uuid4().hex[:8]}"
    async with in_process_worker(client, QUEUE, list):
        await client.start_workflow(
            workflow_class.run,  # type: ignore[attr-defined]
            id=workflow_id,
            task_queue=QUEUE.task_queue,
        )
        message = await first_task_failure(client, workflow_id)
    await client.get_workflow_handle(workflow_id).terminate("test over")
    assert call in message, message


@pytest.mark.parametrize(("workflow_class", "call"), CASES)
async def test_a_production_worker_runs_it_and_the_replay_gate_stops_it(
    client: Client, workflow_class: type, call: str, tmp_path: Path
) -> None:
    workflow_id = f"det-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, QUEUE, WorkerSettings.from_env({})):
        # Unsandboxed, nothing stops the call: the workflow completes.
        await client.execute_workflow(
            workflow_class.run,  # type: ignore[attr-defined]
            id=workflow_id,
            task_queue=QUEUE.task_queue,
        )
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    stored = tmp_path / QUEUE.name
    stored.mkdir()
    (stored / f"{workflow_id}.json").write_text(json.dumps(history.to_json_dict()))

    # The gate a build passes before it becomes current replays in the sandbox.
    report = await replay_gate(None, QUEUE, histories_dir=tmp_path)
    assert not report.passed and report.replayed_stored == 1
    assert call in report.failures[0].error, report.failures[0].error
