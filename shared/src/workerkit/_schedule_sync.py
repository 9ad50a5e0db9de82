"""Server-side schedules made to match what the queues declare (``fleet schedules sync``).

``fleet schedules sync`` creates ``notifications-digest`` if it is missing, updates it if its
spec or action differ from the declaration, and leaves it alone otherwise. Its state (paused
or not, and the note) belongs to operators once it exists: ``paused`` and ``note`` apply when
the schedule is created, and a sync never unpauses a paused schedule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import timedelta
from typing import Literal

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleIntervalSpec,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.client import Schedule as TemporalSchedule
from workerkit._exceptions import ConfigurationError
from workerkit._registry import Queue
from workerkit._schedules import Schedule

__all__ = [
    "MEMO_KEY",
    "SyncOutcome",
    "UnknownScheduleError",
    "declared_schedules",
    "find_schedule",
    "schedule_id",
    "sync_schedules",
]

# The scheduled action's memo records the declaration it was synced from (and every run
# the schedule starts carries it). The server stores a cron expression only in its
# calendar form, so the declared cron is compared with this record.
MEMO_KEY = "workerkit_schedule"

SyncOutcome = Literal["created", "updated", "unchanged"]


class UnknownScheduleError(ConfigurationError):
    """A schedule id that no installed queue declares."""

    def __init__(self, schedule_id: str, known: list[str]) -> None:
        self.schedule_id = schedule_id
        self.known = known
        listing = ", ".join(known) if known else "no installed queue declares one"
        super().__init__(f"unknown schedule {schedule_id!r}; known schedules: {listing}")


def schedule_id(queue: Queue, schedule: Schedule) -> str:
    """The server-side id of ``schedule`` of ``queue``: ``<queue>-<schedule id>``."""
    return f"{queue.name}-{schedule.id}"


def declared_schedules(queues: Iterable[Queue]) -> dict[str, tuple[Queue, Schedule]]:
    """Map the server-side id of every schedule the queues declare to its declaration."""
    return {schedule_id(q, s): (q, s) for q in queues for s in q.schedules}


def find_schedule(queues: Iterable[Queue], id: str) -> tuple[Queue, Schedule]:
    """Return the queue and declaration of the schedule whose server-side id is ``id``.

    Raises:
        UnknownScheduleError: None of the queues declares it.
    """
    declared = declared_schedules(queues)
    if id not in declared:
        raise UnknownScheduleError(id, sorted(declared))
    return declared[id]


def _desired(queue: Queue, schedule: Schedule) -> TemporalSchedule:
    sid = schedule_id(queue, schedule)
    intervals = []
    if schedule.every is not None:
        intervals.append(ScheduleIntervalSpec(every=schedule.every, offset=schedule.offset))
    return TemporalSchedule(
        action=ScheduleActionStartWorkflow(
            schedule.workflow_type,
            args=list(schedule.args),
            id=sid,
            task_queue=queue.task_queue,
            execution_timeout=schedule.execution_timeout,
            priority=queue.priority(schedule.workflow_type, list(schedule.args)),
            memo={MEMO_KEY: {"queue": queue.name, "schedule": schedule.id, "cron": schedule.cron}},
        ),
        spec=ScheduleSpec(
            cron_expressions=[schedule.cron] if schedule.cron is not None else [],
            intervals=intervals,
            time_zone_name=schedule.time_zone,
        ),
        policy=SchedulePolicy(overlap=schedule.overlap),
        state=ScheduleState(paused=schedule.paused, note=schedule.note or None),
    )


def _intervals(spec: ScheduleSpec) -> list[tuple[timedelta, timedelta]]:
    return [(i.every, i.offset or timedelta(0)) for i in spec.intervals]


async def _in_sync(client: Client, desired: TemporalSchedule, live: ScheduleDescription) -> bool:
    """Compare what the declaration sets with what the server holds (not the state)."""
    want, have = desired.action, live.schedule.action
    assert isinstance(want, ScheduleActionStartWorkflow)
    if not isinstance(have, ScheduleActionStartWorkflow):
        return False
    # A described action holds its arguments and memo as payloads: compare decoded values.
    converter = client.data_converter
    have_payloads = [a for a in have.args if isinstance(a, Payload)]
    if len(have_payloads) != len(have.args):
        return False
    have_args = await converter.decode(have_payloads)
    want_args = await converter.decode(await converter.encode(list(want.args)))
    recorded = None
    memo_payload = (have.memo or {}).get(MEMO_KEY)
    if isinstance(memo_payload, Payload):
        [recorded] = await converter.decode([memo_payload])
    spec, live_spec = desired.spec, live.schedule.spec
    return (
        have.workflow == want.workflow
        and have.id == want.id
        and have.task_queue == want.task_queue
        and have.execution_timeout == want.execution_timeout
        and have.priority == want.priority
        and have_args == want_args
        and recorded == (want.memo or {}).get(MEMO_KEY)
        # The server keeps a cron expression only as calendars: the declared cron is
        # compared with the one the memo recorded (above), and calendars must exist
        # exactly when a cron is declared.
        and bool(live_spec.calendars or live_spec.cron_expressions) == bool(spec.cron_expressions)
        and _intervals(live_spec) == _intervals(spec)
        and (live_spec.time_zone_name or None) == (spec.time_zone_name or None)
        and live.schedule.policy.overlap == desired.policy.overlap
    )


async def _sync_one(client: Client, queue: Queue, schedule: Schedule) -> SyncOutcome:
    sid = schedule_id(queue, schedule)
    desired = _desired(queue, schedule)
    try:
        await client.create_schedule(sid, desired)
        return "created"
    except ScheduleAlreadyRunningError:
        pass
    handle = client.get_schedule_handle(sid)
    if await _in_sync(client, desired, await handle.describe()):
        return "unchanged"

    def keep_state(update: ScheduleUpdateInput) -> ScheduleUpdate:
        # Pausing is an operator's decision: an update changes what and when, not that.
        current = update.description.schedule.state
        return ScheduleUpdate(schedule=dataclasses.replace(desired, state=current))

    await handle.update(keep_state)
    return "updated"


async def sync_schedules(client: Client, queues: Iterable[Queue]) -> list[tuple[str, SyncOutcome]]:
    """Make the server's schedules match the queues' declarations.

    Each declared schedule is created if missing, updated if its spec or action differ
    from the declaration (a changed interval, cron, argument, workflow, task queue after
    a version bump…), and left alone otherwise; a paused schedule stays paused. Schedules
    that are no longer declared are not deleted. A cron is compared with the one recorded
    in the action's memo at the last sync, since the server keeps only its calendar form:
    an edit of those calendars made outside ``sync`` goes unnoticed.

    Args:
        client: A connected client.
        queues: The queues whose schedules to sync.

    Returns:
        ``(schedule id, "created" | "updated" | "unchanged")`` per schedule, in
        declaration order.

    Raises:
        temporalio.service.RPCError: The server refused a call.
    """
    results: list[tuple[str, SyncOutcome]] = []
    for queue in queues:
        for schedule in queue.schedules:
            results.append((schedule_id(queue, schedule), await _sync_one(client, queue, schedule)))
    return results
