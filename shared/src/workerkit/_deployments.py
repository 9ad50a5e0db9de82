"""A queue's Worker Deployment on the server: its builds, their routing, and rollouts.

Reads and changes routing through the server's Worker Deployment API (the same calls the
``temporal worker deployment`` commands and temporal-worker-controller make). Every change
passes the conflict token of the state it was decided on, so two operators (or two replicas
bootstrapping at once) cannot overwrite each other's decision unseen.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.deployment.v1 import WorkerDeploymentVersion
from temporalio.api.enums.v1 import TaskQueueType, WorkerDeploymentVersionStatus
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DeleteWorkerDeploymentVersionRequest,
    DescribeTaskQueueRequest,
    DescribeWorkerDeploymentRequest,
    DescribeWorkerDeploymentVersionRequest,
    SetWorkerDeploymentCurrentVersionRequest,
    SetWorkerDeploymentRampingVersionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from workerkit._exceptions import WorkerkitError

__all__ = [
    "BuildState",
    "DeploymentError",
    "DeploymentState",
    "bootstrap_current",
    "delete_version",
    "describe_deployment",
    "pollers_by_build",
    "set_current",
    "set_ramping",
    "task_queues_of",
    "wait_for_pollers",
]

_log = logging.getLogger("workerkit.deployments")

_STATUS = {
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CURRENT: "current",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_RAMPING: "ramping",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING: "draining",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED: "drained",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_INACTIVE: "inactive",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CREATED: "created",
}


class DeploymentError(WorkerkitError):
    """A rollout step that cannot be taken (the CLI exits 1 and says why)."""


_T = TypeVar("_T")


async def _retrying(call: Callable[[], Awaitable[_T]], *, attempts: int = 8) -> _T:
    # The server throttles requests per deployment (its routing lives in a workflow, and a
    # new build's first poll is an update to it); that answer means "ask again soon".
    delay = 0.25
    for attempt in range(attempts):
        try:
            return await call()
        except RPCError as err:
            if err.status != RPCStatusCode.RESOURCE_EXHAUSTED or attempt == attempts - 1:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)
    raise AssertionError("unreachable")


def identity() -> str:
    """Who changes routing, as the server records it (shown by ``temporal worker deployment``)."""
    return f"fleet@{socket.gethostname()}"


def quote_visibility(value: str) -> str:
    """``value`` as a string literal of a visibility (list filter) query."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _time(ts: Timestamp) -> datetime | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class BuildState:
    """One build of a deployment as the server sees it.

    Attributes:
        build_id: The build's id.
        status: ``current``, ``ramping``, ``draining`` (not current any more, pinned work
            remains), ``drained`` (no open execution needs it), ``inactive`` (never current
            or ramping) or ``created``.
        ramp_percentage: The share of new executions it gets while ramping.
        pollers: Workers of this build polling the queue now (from the task queue).
        current_since: When it became current, if it is.
        last_current: When it was last current (the previous build of a rollback).
        created: When the server first saw a worker of it.
    """

    build_id: str
    status: str
    ramp_percentage: float
    pollers: int
    current_since: datetime | None
    last_current: datetime | None
    created: datetime | None


@dataclass(frozen=True, kw_only=True)
class DeploymentState:
    """A Worker Deployment: its builds and the routing that decides who gets new work."""

    name: str
    builds: tuple[BuildState, ...]
    current_build_id: str | None
    ramping_build_id: str | None
    ramp_percentage: float
    routing_revision: int
    conflict_token: bytes

    def build(self, build_id: str) -> BuildState | None:
        """The build called ``build_id``, if the server knows it."""
        return next((b for b in self.builds if b.build_id == build_id), None)

    def previous_build(self) -> BuildState | None:
        """The build that was current most recently before the current one."""
        candidates = [
            b
            for b in self.builds
            if b.build_id != self.current_build_id and b.last_current is not None
        ]
        return max(candidates, key=lambda b: b.last_current or datetime.min, default=None)


async def pollers_by_build(client: Client, task_queues: Sequence[str]) -> dict[str, int]:
    """Count the workers polling ``task_queues`` per build id (``""`` for unversioned ones).

    A worker counts once per build even though it polls workflow and activity tasks.
    """
    identities: dict[str, set[str]] = {}
    for task_queue in task_queues:
        for kind in (
            TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        ):
            response = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=task_queue),
                    task_queue_type=kind,
                )
            )
            for poller in response.pollers:
                build = poller.deployment_options.build_id
                identities.setdefault(build, set()).add(poller.identity)
    return {build: len(ids) for build, ids in identities.items()}


async def describe_deployment(
    client: Client, name: str, *, task_queues: Sequence[str] = ()
) -> DeploymentState | None:
    """Return the deployment ``name``, or ``None`` if no versioned worker ever polled for it.

    Args:
        client: A connected client.
        name: The Worker Deployment's name.
        task_queues: The queue's task queues, to count each build's pollers.
    """
    try:
        response = await _retrying(
            lambda: client.workflow_service.describe_worker_deployment(
                DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=name)
            )
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    info = response.worker_deployment_info
    routing = info.routing_config
    pollers = await pollers_by_build(client, task_queues) if task_queues else {}
    builds = tuple(
        BuildState(
            build_id=s.deployment_version.build_id,
            status=_STATUS.get(s.status, "unknown"),
            ramp_percentage=(
                routing.ramping_version_percentage
                if s.deployment_version.build_id == routing.ramping_deployment_version.build_id
                else 0.0
            ),
            pollers=pollers.get(s.deployment_version.build_id, 0),
            current_since=_time(s.current_since_time),
            last_current=_time(s.last_current_time) or _time(s.current_since_time),
            created=_time(s.create_time),
        )
        for s in sorted(info.version_summaries, key=lambda s: s.create_time.ToNanoseconds())
    )
    return DeploymentState(
        name=name,
        builds=builds,
        current_build_id=routing.current_deployment_version.build_id or None,
        ramping_build_id=routing.ramping_deployment_version.build_id or None,
        ramp_percentage=routing.ramping_version_percentage,
        routing_revision=routing.revision_number,
        conflict_token=response.conflict_token,
    )


async def task_queues_of(client: Client, deployment: str, build_id: str) -> set[str]:
    """The task queues the server has seen workers of ``build_id`` poll."""
    response = await _retrying(
        lambda: client.workflow_service.describe_worker_deployment_version(
            DescribeWorkerDeploymentVersionRequest(
                namespace=client.namespace,
                deployment_version=WorkerDeploymentVersion(
                    deployment_name=deployment, build_id=build_id
                ),
            )
        )
    )
    return {tq.name for tq in response.worker_deployment_version_info.task_queue_infos}


async def set_current(client: Client, state: DeploymentState, build_id: str) -> str | None:
    """Make ``build_id`` the current build; return the build that was current before.

    Raises:
        DeploymentError: The server refused (e.g. the build does not poll a task queue
            the current build polls, or routing changed since ``state`` was read).
    """
    try:
        response = await _retrying(
            lambda: client.workflow_service.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace=client.namespace,
                    deployment_name=state.name,
                    build_id=build_id,
                    conflict_token=state.conflict_token,
                    identity=identity(),
                )
            )
        )
    except RPCError as err:
        raise DeploymentError(
            f"the server refused to make build {build_id or 'unversioned'} of deployment "
            f"{state.name} current: {err.message}"
        ) from err
    return response.previous_deployment_version.build_id or None


async def set_ramping(
    client: Client, state: DeploymentState, build_id: str, percentage: float
) -> None:
    """Send ``percentage`` % of new executions (and upgrading ones) to ``build_id``.

    Raises:
        DeploymentError: The server refused (see :func:`set_current`).
    """
    try:
        await _retrying(
            lambda: client.workflow_service.set_worker_deployment_ramping_version(
                SetWorkerDeploymentRampingVersionRequest(
                    namespace=client.namespace,
                    deployment_name=state.name,
                    build_id=build_id,
                    percentage=percentage,
                    conflict_token=state.conflict_token,
                    identity=identity(),
                )
            )
        )
    except RPCError as err:
        raise DeploymentError(
            f"the server refused to ramp build {build_id or '(none)'} of deployment "
            f"{state.name}: {err.message}"
        ) from err


async def delete_version(client: Client, deployment: str, build_id: str) -> None:
    """Retire ``build_id``: the server forgets it (it must be drained and have no pollers).

    Raises:
        DeploymentError: The server refused (still draining, still polled, current).
    """
    try:
        await _retrying(
            lambda: client.workflow_service.delete_worker_deployment_version(
                DeleteWorkerDeploymentVersionRequest(
                    namespace=client.namespace,
                    deployment_version=WorkerDeploymentVersion(
                        deployment_name=deployment, build_id=build_id
                    ),
                    identity=identity(),
                )
            )
        )
    except RPCError as err:
        raise DeploymentError(
            f"the server refused to retire build {build_id} of deployment {deployment}: "
            f"{err.message}"
        ) from err


async def wait_for_pollers(
    client: Client,
    deployment: str,
    build_id: str,
    task_queues: Sequence[str],
    *,
    timeout: timedelta,
) -> DeploymentState:
    """Wait until the server knows ``build_id`` and a worker of it polls every task queue.

    Raises:
        DeploymentError: Not within ``timeout``.
    """
    deadline = time.monotonic() + timeout.total_seconds()
    while True:
        # Pollers are counted per task queue (each must have one), once per round.
        state = await describe_deployment(client, deployment)
        if state is not None and state.build(build_id) is not None:
            polling = [await pollers_by_build(client, [tq]) for tq in task_queues]
            if all(p.get(build_id) for p in polling):
                return state
        if time.monotonic() >= deadline:
            seen = ", ".join(b.build_id for b in state.builds) if state else "none"
            raise DeploymentError(
                f"build {build_id} of deployment {deployment} has no pollers on "
                f"{', '.join(task_queues)} after {timeout.total_seconds():g}s "
                f"(builds the server knows: {seen}); start its workers first"
            )
        await asyncio.sleep(1.0)


async def bootstrap_current(client: Client, deployment: str, build_id: str) -> bool:
    """Make ``build_id`` current if its deployment was never routed; return whether it did.

    The first build of a new deployment has nobody to take over from: without this, a
    fresh stack would run versioned workers that no new execution is routed to until an
    operator promotes one. A deployment whose routing was ever set, even back to
    unversioned workers on purpose, is left alone.
    """
    for _attempt in range(5):
        state = await describe_deployment(client, deployment)
        if state is None:
            await asyncio.sleep(0.5)  # the first poll registers the version; not seen yet
            continue
        if state.routing_revision or state.current_build_id or state.ramping_build_id:
            return False
        try:
            await set_current(client, state, build_id)
        except DeploymentError as err:
            # Another replica decided first (conflict token) or the version is not
            # registered yet: look again.
            _log.info("bootstrap not applied yet, retrying", extra={"reason": str(err)})
            await asyncio.sleep(0.5)
            continue
        return True
    return False
