"""Replay every stored history against today's workflow code.

A change that is not replay-safe (a new activity, a reordered step, a removed timer
without ``workflow.patched()``) raises a non-determinism error here. Histories live with each
queue's code (its ``histories`` package: ``recorded/``, which ``make histories`` records anew
from the test scenarios, and ``frozen/``); the replay gate of a deploy reads the same ones.
"""

from __future__ import annotations

import json
from importlib.resources.abc import Traversable

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from workerkit import Queue, WorkerkitPlugin, discover_queues
from workerkit._child_priority import queue_interceptors
from workerkit._replay_gate import stored_histories


def started_type(path: Traversable) -> str:
    events = json.loads(path.read_text())["events"]
    attrs = events[0]["workflowExecutionStartedEventAttributes"]
    return str(attrs["workflowType"]["name"])


QUEUES = list(discover_queues().values())


@pytest.mark.parametrize("queue", QUEUES, ids=[q.name for q in QUEUES])
def test_every_workflow_type_has_a_stored_history(queue: Queue) -> None:
    covered = {started_type(p) for p in stored_histories(queue)}
    missing = sorted(set(queue.workflow_types()) - covered)
    assert not missing, f"no stored history for {missing}: run `make histories`"


@pytest.mark.parametrize("queue", QUEUES, ids=[q.name for q in QUEUES])
async def test_stored_histories_replay(queue: Queue) -> None:
    replayer = Replayer(
        workflows=list(queue.workflows),
        plugins=[WorkerkitPlugin(interceptors=queue_interceptors(queue))],
    )
    histories = stored_histories(queue)
    assert histories, f"queue {queue.name} stores no history"
    for path in histories:
        history = WorkflowHistory.from_json(path.name, path.read_text())
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
