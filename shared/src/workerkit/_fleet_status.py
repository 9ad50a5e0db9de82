"""One view of the fleet: every queue's builds, backlog, rollout and schedules, every worker.

Everything is read from the server, as an operator's ``fleet status`` sees it:

- per queue, its Worker Deployment's builds (routing, pollers, open executions) and the
  backlog of its task queue (count and age of the oldest task), in total, per build and per
  priority key, from the server's task queue statistics;
- its latest rollout and its declared schedules (next run, paused);
- every live worker from the SDK's worker heartbeats (the server's worker list, which needs
  ``frontend.WorkerHeartbeatsEnabled`` and ``frontend.ListWorkersEnabled``), with its slots;
  a worker whose last heartbeat is older than ``stale_after`` is flagged.

A part that cannot be read (the server down, a permission missing, a feature off) is one
line in ``problems`` naming it, and the rest is still shown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.api.deployment.v1 import WorkerDeploymentVersion
from temporalio.api.enums.v1 import WorkerStatus
from temporalio.api.taskqueue.v1 import TaskQueue, TaskQueueStats
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeWorkerDeploymentVersionRequest,
    ListWorkersRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from workerkit._deployments import DeploymentState, describe_deployment, quote_visibility
from workerkit._registry import Queue
from workerkit._rollout import RolloutStatus, RolloutWorkflow, rollout_id
from workerkit._schedule_sync import schedule_id
from workerkit._task_queue_limits import (
    TASK_QUEUE_TYPES,
    Kind,
    Limits,
    declared_limits,
    limits_from_config,
    limits_match,
)

__all__ = [
    "BacklogView",
    "BuildView",
    "FleetStatus",
    "QueueView",
    "ScheduleView",
    "WorkerView",
    "fleet_status",
    "running_rollout",
]

T = TypeVar("T")

# The SDK's default heartbeat interval is 60 s: three missed ones and the worker is stale.
STALE_AFTER = timedelta(minutes=3)
# A part the server does not answer within this is a problem line, not a stalled view.
PART_TIMEOUT = timedelta(seconds=15)
_HEARTBEATS_OFF = (
    "workers: pollers but no worker heartbeats: enable frontend.WorkerHeartbeatsEnabled and "
    "frontend.ListWorkersEnabled in the server's dynamic config (or the workers started less "
    "than a heartbeat interval, WORKER_HEARTBEAT_INTERVAL, ago)"
)


@dataclass(frozen=True)
class BacklogView:
    """Tasks waiting in a task queue: how many, and how long the oldest has waited."""

    count: int = 0
    oldest_seconds: float = 0.0

    def __add__(self, other: BacklogView) -> BacklogView:
        return BacklogView(self.count + other.count, max(self.oldest_seconds, other.oldest_seconds))


@dataclass(frozen=True)
class BuildView:
    """One build of a queue's Worker Deployment."""

    build_id: str
    status: str
    ramp_percentage: float
    pollers: int
    open_executions: int | None
    backlog: BacklogView | None


@dataclass(frozen=True)
class ScheduleView:
    """One of the queue's declared schedules, as the server has it."""

    id: str
    next_run: str | None
    paused: bool
    synced: bool


@dataclass(frozen=True)
class QueueView:
    """Everything about one queue."""

    name: str
    task_queue: str
    deployment: str
    builds: list[BuildView]
    pollers: int
    open_executions: int | None
    backlog: dict[str, BacklogView]
    backlog_by_priority: dict[str, BacklogView]
    rollout: str | None
    schedules: list[ScheduleView]
    # The task queue's rate limits and fairness weights on the server, and the fairness key.
    limits: str | None = None
    # False when the builds could not be read (a problem line says why), not that none polled.
    builds_read: bool = True


@dataclass(frozen=True)
class WorkerView:
    """One worker, from its latest heartbeat."""

    instance_key: str
    identity: str
    host: str
    process_id: str
    task_queue: str
    deployment: str
    build_id: str
    status: str
    slots: dict[str, tuple[int, int]]
    last_heartbeat: str | None
    seconds_since_heartbeat: float | None
    stale: bool


@dataclass(frozen=True)
class FleetStatus:
    """The fleet as the server sees it; ``problems`` names what could not be read."""

    namespace: str
    read_at: str
    queues: list[QueueView]
    workers: list[WorkerView]
    problems: list[str] = field(default_factory=list)


def limits_line(queue: Queue, live: Mapping[Kind, Limits]) -> str | None:
    """One line of the task queue's server config and fairness key, or ``None`` if empty."""
    parts = []
    key = queue.fairness.key
    if key is not None:
        parts.append(f"fairness key {key if isinstance(key, str) else 'per workflow'}")
    for kind, limits in live.items():
        if limits.rate is not None:
            parts.append(f"{kind} rate {limits.rate:g}/s")
        if limits.rate_per_key is not None:
            parts.append(f"{kind} rate per key {limits.rate_per_key:g}/s")
    weights = {k: v for limits in live.values() for k, v in limits.weights.items()}
    if weights:
        parts.append("weights " + ", ".join(f"{k}={v:g}" for k, v in sorted(weights.items())))
    declared = declared_limits(queue)
    if not all(limits_match(live[kind], declared[kind]) for kind in declared if kind in live):
        # An environment's override (fleet limits apply --activity-rate, the chart's
        # queues.<name>.limits) differs too: say both, never just "apply it".
        parts.append("differs from the declaration (an override, or not applied yet)")
    return "; ".join(parts) or None


async def running_rollout(
    client: Client, deployment: str
) -> tuple[WorkflowHandle[RolloutWorkflow, RolloutStatus], RolloutStatus | None, bool] | None:
    """The deployment's latest rollout: (handle, its status, whether it still runs)."""
    handle = client.get_workflow_handle_for(RolloutWorkflow.run, rollout_id(deployment))
    try:
        described = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    running = described.status == WorkflowExecutionStatus.RUNNING
    status: RolloutStatus | None
    if running:
        status = await handle.query(RolloutWorkflow.status)
    elif described.status == WorkflowExecutionStatus.COMPLETED:
        status = await handle.result()
    else:
        status = None
    return handle, status, running


def _backlog(stats: TaskQueueStats) -> BacklogView:
    return BacklogView(
        stats.approximate_backlog_count, stats.approximate_backlog_age.ToTimedelta().total_seconds()
    )


class _Reader:
    """Reads parts of the status; a part that fails becomes one line in ``problems``."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.problems: list[str] = []

    async def part(self, what: str, read: Callable[[], Awaitable[T]], default: T) -> T:
        try:
            return await asyncio.wait_for(read(), PART_TIMEOUT.total_seconds())
        except RPCError as err:
            reason = {
                RPCStatusCode.PERMISSION_DENIED: "permission denied",
                RPCStatusCode.UNAVAILABLE: "the server is unavailable",
                RPCStatusCode.UNIMPLEMENTED: "the server does not offer it",
            }.get(err.status, err.message)
            self.problems.append(f"{what}: {reason}")
        except TimeoutError:
            self.problems.append(f"{what}: no answer within {PART_TIMEOUT.total_seconds():g}s")
        except Exception as err:  # a query the workflow refuses, a result that does not decode
            self.problems.append(f"{what}: {type(err).__name__}: {err}")
        return default

    async def count(self, query: str) -> int:
        return (await self.client.count_workflows(query)).count

    async def backlog(
        self, task_queue: str
    ) -> tuple[dict[str, BacklogView], dict[str, BacklogView], int, dict[Kind, Limits]]:
        """The backlog by task kind and by priority key, the workflow pollers, and the task
        queue's limits per kind (read by the same calls)."""
        by_kind: dict[str, BacklogView] = {}
        by_priority: dict[str, BacklogView] = {}
        pollers = 0
        live: dict[Kind, Limits] = {}
        for kind, tq_type in TASK_QUEUE_TYPES.items():
            response = await self.client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=self.client.namespace,
                    task_queue=TaskQueue(name=task_queue),
                    task_queue_type=tq_type,
                    report_stats=True,
                    report_config=True,
                )
            )
            live[kind] = limits_from_config(response.config)
            if kind == "workflow":
                pollers = len({p.identity for p in response.pollers})
            by_kind[kind] = _backlog(response.stats)
            for key, stats in response.stats_by_priority_key.items():
                name = str(key)
                by_priority[name] = by_priority.get(name, BacklogView()) + _backlog(stats)
        return by_kind, by_priority, pollers, live

    async def build_backlog(self, deployment: str, build_id: str, task_queue: str) -> BacklogView:
        response = await self.client.workflow_service.describe_worker_deployment_version(
            DescribeWorkerDeploymentVersionRequest(
                namespace=self.client.namespace,
                deployment_version=WorkerDeploymentVersion(
                    deployment_name=deployment, build_id=build_id
                ),
                report_task_queue_stats=True,
            )
        )
        total = BacklogView()
        for info in response.version_task_queues:
            if info.name == task_queue:
                total += _backlog(info.stats)
        return total

    async def queue(self, queue: Queue, deployment: str) -> QueueView:
        tq = queue.task_queue
        unread = object()  # what a failed read returns: apart from "no such deployment"
        state = await self.part(
            f"{queue.name}: builds",
            lambda: describe_deployment(self.client, deployment, task_queues=[tq]),
            unread,
        )
        builds_read = state is not unread
        builds = []
        for b in state.builds if isinstance(state, DeploymentState) else ():
            version = f"{deployment}:{b.build_id}"
            running = await self.part(
                f"{queue.name}: open executions of build {b.build_id}",
                lambda v=version: self.count(  # type: ignore[misc]
                    f"TaskQueue = {quote_visibility(tq)} AND ExecutionStatus = 'Running' AND "
                    f"TemporalWorkerDeploymentVersion = {quote_visibility(v)}"
                ),
                None,
            )
            build_backlog = await self.part(
                f"{queue.name}: backlog of build {b.build_id}",
                lambda b=b: self.build_backlog(deployment, b.build_id, tq),  # type: ignore[misc]
                None,
            )
            builds.append(
                BuildView(
                    b.build_id, b.status, b.ramp_percentage, b.pollers, running, build_backlog
                )
            )
        open_executions = await self.part(
            f"{queue.name}: open executions",
            lambda: self.count(
                f"TaskQueue = {quote_visibility(tq)} AND ExecutionStatus = 'Running'"
            ),
            None,
        )
        nothing: tuple[dict[str, BacklogView], dict[str, BacklogView], int, dict[Kind, Limits]]
        nothing = ({}, {}, 0, {})
        backlog, by_priority, pollers, live = await self.part(
            f"{queue.name}: backlog", lambda: self.backlog(tq), nothing
        )
        rollout = await self.part(
            f"{queue.name}: rollout", lambda: running_rollout(self.client, deployment), None
        )
        rollout_line = None
        if rollout is not None and rollout[1] is not None:
            status, running_now = rollout[1], rollout[2]
            rollout_line = (
                f"build {status.build_id}: {status.phase}, step {status.step} of "
                f"{len(status.steps)}, ramp {status.ramp}%" + (" (paused)" if status.paused else "")
                if running_now
                else f"last, of build {status.build_id}: {status.outcome}"
            )
        schedules = [await self.schedule(queue, s) for s in queue.schedules]
        return QueueView(
            queue.name,
            tq,
            deployment,
            builds,
            pollers,
            open_executions,
            backlog,
            by_priority,
            rollout_line,
            schedules,
            limits_line(queue, live) if live else None,
            builds_read,
        )

    async def schedule(self, queue: Queue, schedule: Any) -> ScheduleView:
        sid = schedule_id(queue, schedule)
        try:
            described = await self.client.get_schedule_handle(sid).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return ScheduleView(sid, None, False, synced=False)
            self.problems.append(f"{queue.name}: schedule {sid}: {err.message}")
            return ScheduleView(sid, None, False, synced=False)
        upcoming = described.info.next_action_times
        return ScheduleView(
            sid,
            upcoming[0].astimezone(UTC).isoformat() if upcoming else None,
            described.schedule.state.paused,
            synced=True,
        )

    async def workers(self, stale_after: timedelta, now: datetime) -> list[WorkerView]:
        found: list[WorkerView] = []
        token = b""
        while True:
            response = await self.client.workflow_service.list_workers(
                ListWorkersRequest(
                    namespace=self.client.namespace, page_size=200, next_page_token=token
                )
            )
            # workers_info, though deprecated for the lighter `workers`: only it carries the
            # heartbeat (slots in use, last heartbeat time) this view shows.
            for info in response.workers_info:
                found.append(_worker(info.worker_heartbeat, stale_after, now))
            token = response.next_page_token
            if not token:
                return sorted(found, key=lambda w: (w.task_queue, w.host, w.process_id))


def _worker(hb: Any, stale_after: timedelta, now: datetime) -> WorkerView:
    slots = {}
    for kind, info in (
        ("workflow", hb.workflow_task_slots_info),
        ("activity", hb.activity_task_slots_info),
        ("local_activity", hb.local_activity_slots_info),
        ("nexus", hb.nexus_task_slots_info),
    ):
        if info.current_available_slots or info.current_used_slots:
            slots[kind] = (info.current_used_slots, info.current_available_slots)
    beat = hb.heartbeat_time.ToDatetime(tzinfo=UTC) if hb.HasField("heartbeat_time") else None
    since = (now - beat).total_seconds() if beat else None
    status = WorkerStatus.Name(hb.status).removeprefix("WORKER_STATUS_").lower()
    return WorkerView(
        instance_key=hb.worker_instance_key,
        identity=hb.worker_identity,
        host=hb.host_info.host_name,
        process_id=hb.host_info.process_id,
        task_queue=hb.task_queue,
        deployment=hb.deployment_version.deployment_name,
        build_id=hb.deployment_version.build_id,
        status=status,
        slots=slots,
        last_heartbeat=beat.isoformat() if beat else None,
        seconds_since_heartbeat=since,
        # A worker that said it stopped is not stale, it is gone; one that went silent is.
        stale=status == "running" and (since is None or since > stale_after.total_seconds()),
    )


async def fleet_status(
    client: Client,
    queues: Sequence[Queue],
    deployments: dict[str, str],
    *,
    stale_after: timedelta = STALE_AFTER,
) -> FleetStatus:
    """Read the status of ``queues`` (each under its Worker Deployment name) and the workers.

    Args:
        client: The namespace's client.
        queues: The queues to show.
        deployments: Each queue's Worker Deployment name, by queue name.
        stale_after: A running worker whose last heartbeat is older is flagged stale.
    """
    reader = _Reader(client)
    now = datetime.now(UTC)
    views = await asyncio.gather(*(reader.queue(q, deployments[q.name]) for q in queues))
    none: list[WorkerView] = []
    workers = await reader.part("workers", lambda: reader.workers(stale_after, now), none)
    # The list is empty both when no worker runs and when heartbeats are off: pollers without
    # a heartbeat tell the two apart.
    unread = any(p.startswith("workers:") for p in reader.problems)
    if not workers and not unread and any(v.pollers for v in views):
        reader.problems.append(_HEARTBEATS_OFF)
    return FleetStatus(
        namespace=client.namespace,
        read_at=now.isoformat(),
        queues=list(views),
        workers=workers,
        problems=reader.problems,
    )
