"""The digest schedule: declared on the queue, synced and operated with ``fleet schedules``.

The CLI runs as a subprocess against the test server; the scheduled DigestWorkflow runs
on this module's in-process worker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import VersioningBehavior
from temporalio.service import RPCError, RPCStatusCode
from workerkit import ConfigurationError, Queue, Schedule, sync_schedules

from notifications.client import send_notification
from notifications.models import Digest, DigestRequest, Notification
from notifications.outbox import Outbox
from notifications.queue import DIGEST_SCHEDULE, QUEUE
from notifications.workflows import DigestWorkflow, NotifyWorkflow

from support import RecordHistory, run_cli

DIGEST_ID = "notifications-digest"


@pytest.fixture
def server_env(temporal_address: str) -> dict[str, str]:
    return {"TEMPORAL_ADDRESS": temporal_address, "TEMPORAL_NAMESPACE": "default"}


async def delete_schedule(client: Client, schedule_id: str) -> None:
    try:
        await client.get_schedule_handle(schedule_id).delete()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise


@pytest.fixture
async def no_digest_schedule(client: Client) -> AsyncIterator[None]:
    """Each test starts without the digest schedule on the server and leaves none behind."""
    await delete_schedule(client, DIGEST_ID)
    yield
    await delete_schedule(client, DIGEST_ID)


PINNED = VersioningBehavior.PINNED


def fleet(env: dict[str, str], *args: str) -> str:
    out = run_cli(*args, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout


def listed(env: dict[str, str]) -> dict[str, Any]:
    return {row["id"]: row for row in json.loads(fleet(env, "schedules", "list", "--json"))}


@pytest.mark.slow
@pytest.mark.usefixtures("no_digest_schedule")
async def test_sync_creates_then_leaves_alone_then_repairs_drift(
    client: Client, server_env: dict[str, str]
) -> None:
    assert fleet(server_env, "schedules", "sync") == f"schedule {DIGEST_ID}: created\n"
    assert fleet(server_env, "schedules", "sync") == f"schedule {DIGEST_ID}: unchanged\n"
    handle = client.get_schedule_handle(DIGEST_ID)
    described = (await handle.describe()).schedule
    action = described.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.id, action.task_queue) == (
        "DigestWorkflow",
        DIGEST_ID,
        "notifications-v1",
    )
    assert described.spec.intervals == [
        ScheduleIntervalSpec(every=timedelta(days=1), offset=timedelta(hours=8))
    ]
    assert not described.state.paused and described.state.note == DIGEST_SCHEDULE.note

    # An operator pauses it, and someone edits its interval by hand.
    fleet(server_env, "schedules", "pause", DIGEST_ID, "--note", "incident 42")

    def hourly(update: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = update.description.schedule
        schedule.spec.intervals = [ScheduleIntervalSpec(every=timedelta(hours=1))]
        return ScheduleUpdate(schedule=schedule)

    await handle.update(hourly)
    out = fleet(server_env, "schedules", "sync", "notifications")
    assert out == f"schedule {DIGEST_ID}: updated\n"
    repaired = (await handle.describe()).schedule
    assert repaired.spec.intervals == described.spec.intervals
    # The sync restored the declaration, not the state: it is still paused, with its note.
    assert repaired.state.paused and repaired.state.note == "incident 42"
    assert fleet(server_env, "schedules", "sync") == f"schedule {DIGEST_ID}: unchanged\n"


async def test_declaration_changes_update_the_schedule(client: Client) -> None:
    base = Schedule(
        id="weekday-digest",
        workflow=DigestWorkflow,
        args=[DigestRequest(title="weekday")],
        cron="0 8 * * 1-5",
    )
    queue = Queue(name="schedtest", workflows=[DigestWorkflow], versioning=PINNED, schedules=[base])
    sid = "schedtest-weekday-digest"
    await delete_schedule(client, sid)
    try:
        assert await sync_schedules(client, [queue]) == [(sid, "created")]
        assert await sync_schedules(client, [queue]) == [(sid, "unchanged")]
        described = (await client.get_schedule_handle(sid).describe()).schedule
        assert [r.start for r in described.spec.calendars[0].hour] == [8]

        changes: list[dict[str, Any]] = [
            {"cron": "30 9 * * 1-5"},
            {"args": [DigestRequest(title="weekday, renamed")]},
            {"every": timedelta(hours=6)},
            {"execution_timeout": timedelta(minutes=5)},
        ]
        for change in changes:
            changed = dataclasses.replace(base, **change)
            queue = Queue(
                name="schedtest", workflows=[DigestWorkflow], versioning=PINNED, schedules=[changed]
            )
            assert await sync_schedules(client, [queue]) == [(sid, "updated")], change
            assert await sync_schedules(client, [queue]) == [(sid, "unchanged")], change
            base = changed
        described = (await client.get_schedule_handle(sid).describe()).schedule
        assert [(r.start, r.end) for r in described.spec.calendars[0].hour] == [(9, 9)]
        assert described.spec.intervals == [ScheduleIntervalSpec(every=timedelta(hours=6))]

        bumped = Queue(
            name="schedtest",
            version=2,
            workflows=[DigestWorkflow],
            versioning=PINNED,
            schedules=[base],
        )
        assert await sync_schedules(client, [bumped]) == [(sid, "updated")]
        action = (await client.get_schedule_handle(sid).describe()).schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.task_queue == "schedtest-v2"
    finally:
        await delete_schedule(client, sid)


@pytest.mark.slow
@pytest.mark.usefixtures("no_digest_schedule")
def test_pause_and_unpause_show_in_list(server_env: dict[str, str]) -> None:
    text = fleet(server_env, "schedules", "list")
    assert DIGEST_ID in text and "missing (run `fleet schedules sync`)" in text
    fleet(server_env, "schedules", "sync")
    row = listed(server_env)[DIGEST_ID]
    assert (row["exists"], row["paused"], row["workflow"]) == (True, False, "DigestWorkflow")
    assert row["spec"] == "every 1d +8h" and row["next_run"] is not None

    out = fleet(server_env, "schedules", "pause", DIGEST_ID, "--note", "maintenance window")
    assert out == f"schedule {DIGEST_ID}: paused\n"
    row = listed(server_env)[DIGEST_ID]
    assert row["paused"] is True and row["note"] == "maintenance window"
    assert "paused, note: maintenance window" in fleet(server_env, "schedules", "list")

    assert (
        fleet(server_env, "schedules", "unpause", DIGEST_ID) == f"schedule {DIGEST_ID}: unpaused\n"
    )
    row = listed(server_env)[DIGEST_ID]
    assert row["paused"] is False and row["note"] == "unpaused with fleet"


@pytest.mark.slow
@pytest.mark.usefixtures("no_digest_schedule", "notifications_worker")
async def test_trigger_runs_a_digest_of_the_deliveries_since_the_last_one(
    client: Client, outbox: Outbox, server_env: dict[str, str], record_history: RecordHistory
) -> None:
    fleet(server_env, "schedules", "sync", "notifications")
    before = outbox.digests()
    note = Notification(f"digest-{time.time_ns()}", "user-7", "hello", ["email", "chat"])
    await (await send_notification(client, note)).handle.result()

    assert (
        fleet(server_env, "schedules", "trigger", DIGEST_ID) == f"schedule {DIGEST_ID}: triggered\n"
    )
    handle = client.get_schedule_handle(DIGEST_ID)
    deadline = time.monotonic() + 20
    while not (recent := (await handle.describe()).info.recent_actions):
        assert time.monotonic() < deadline, "the trigger started no workflow"
        await asyncio.sleep(0.1)
    started = recent[-1].action
    assert isinstance(started, ScheduleActionExecutionStartWorkflow)
    assert started.workflow_id.startswith(f"{DIGEST_ID}-")
    run = client.get_workflow_handle_for(DigestWorkflow.run, started.workflow_id)
    digest: Digest = await asyncio.wait_for(run.result(), timeout=20)

    assert digest.digest_id == started.workflow_id and digest.title == "daily digest"
    assert digest.after_seq == (before[-1].until_seq if before else 0)
    assert digest.by_channel.get("email", 0) >= 1 and digest.by_channel.get("chat", 0) >= 1
    assert outbox.digests()[-1] == digest
    assert started.workflow_id in listed(server_env)[DIGEST_ID]["recent_runs"]
    await record_history("notifications", "scheduled_digest", run)


@pytest.mark.slow
def test_unknown_schedule_is_bad_input(server_env: dict[str, str]) -> None:
    out = run_cli("schedules", "pause", "nightly-report", env=server_env)
    assert out.returncode == 2, out
    assert out.stderr.startswith("error: unknown schedule 'nightly-report'; known schedules:")
    assert DIGEST_ID in out.stderr and "Traceback" not in out.stderr
    out = run_cli("schedules", "sync", "billing", env=server_env)
    assert out.returncode == 2 and "unknown queue 'billing'" in out.stderr


@pytest.mark.slow
@pytest.mark.usefixtures("no_digest_schedule")
def test_a_declared_schedule_missing_on_the_server_exits_1(server_env: dict[str, str]) -> None:
    out = run_cli("schedules", "trigger", DIGEST_ID, env=server_env)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f"error: schedule {DIGEST_ID} is declared but not on the server; run `fleet schedules sync`"
    )


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        (
            {
                "schedules": [Schedule(id="d", workflow=DigestWorkflow, every=timedelta(hours=1))]
                * 2
            },
            "schedule 'd' twice",
        ),
        (
            {"workflows": [NotifyWorkflow]},
            "starts DigestWorkflow, which the queue does not register",
        ),
    ],
)
def test_queue_rejects_bad_schedule_declarations(declaration: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {
        "name": "bad",
        "workflows": [DigestWorkflow],
        "versioning": PINNED,
        "schedules": [DIGEST_SCHEDULE],
    }
    with pytest.raises(ConfigurationError, match=message):
        Queue(**(fields | declaration))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": "Digest", "every": timedelta(hours=1)}, "lower-case letter followed by"),
        ({"id": "d"}, "set cron, every, or both"),
        ({"id": "d", "every": timedelta(0)}, "every must be positive"),
        (
            {"id": "d", "every": timedelta(hours=1), "offset": timedelta(hours=1)},
            "offset needs every",
        ),
        ({"id": "d", "cron": " "}, "cron is empty"),
    ],
)
def test_schedule_declarations_are_checked(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Schedule(workflow=DigestWorkflow, **fields)
    with pytest.raises(ConfigurationError, match=r"not a @workflow\.defn class"):
        Schedule(id="d", workflow=Outbox, every=timedelta(hours=1))


def test_the_notifications_queue_declares_the_daily_digest() -> None:
    assert list(QUEUE.schedules) == [DIGEST_SCHEDULE]
    assert DIGEST_SCHEDULE.describe_spec() == "every 1d +8h"
