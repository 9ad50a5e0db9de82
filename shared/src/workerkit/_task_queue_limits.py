"""The task queue configuration a queue declares, made to hold on the server.

A queue's :class:`RateLimits` and fairness weights live on the Temporal server, per task
queue and task type (workflow, activity), set with ``UpdateTaskQueueConfig`` and read back
with ``DescribeTaskQueue``. :func:`apply_limits` compares what the server holds with the
declaration and sends only the difference, so applying twice changes nothing; a weight the
declaration no longer names is removed, as the declaration is the one source.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue, TaskQueueConfig
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    UpdateTaskQueueConfigRequest,
)
from temporalio.client import Client
from workerkit._fairness import RateLimits
from workerkit._registry import Queue

__all__ = [
    "KINDS",
    "TASK_QUEUE_TYPES",
    "Kind",
    "LimitChange",
    "Limits",
    "apply_limits",
    "declared_limits",
    "limits_from_config",
    "limits_match",
    "read_limits",
]

Kind = Literal["workflow", "activity"]
KINDS: tuple[Kind, ...] = ("workflow", "activity")
TASK_QUEUE_TYPES: dict[Kind, TaskQueueType.ValueType] = {
    "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
}
_IDENTITY = "fleet limits apply"


@dataclass(frozen=True)
class Limits:
    """One task type's configuration: ``None`` is no limit.

    Attributes:
        rate: Tasks per second for the whole task queue of this type.
        rate_per_key: Tasks per second for each fairness key (activity task queues only).
        weights: Fairness weight per key.
    """

    rate: float | None = None
    rate_per_key: float | None = None
    weights: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LimitChange:
    """One setting :func:`apply_limits` changed (or would change, in a dry run)."""

    kind: Kind
    setting: str
    before: float | None
    after: float | None

    def describe(self) -> str:
        """``activity rate: none -> 200/s``."""
        return f"{self.kind} {self.setting}: {_show(self.before)} -> {_show(self.after)}"


def declared_limits(
    queue: Queue,
    *,
    rate_limits: RateLimits | None = None,
    weights: Mapping[str, float] | None = None,
) -> dict[Kind, Limits]:
    """What ``queue`` declares per task type, with an environment's overrides on top.

    Args:
        queue: The queue declaration.
        rate_limits: Replaces the declared limit of each field that is set.
        weights: Added to (and replacing) the declared weights.
    """
    declared = queue.rate_limits
    over = rate_limits or RateLimits()
    all_weights = {**queue.fairness.weights, **(weights or {})}
    return {
        # The server takes no rate limit on workflow tasks: only the weights.
        "workflow": Limits(weights=all_weights),
        "activity": Limits(
            rate=_first(over.activity_tasks, declared.activity_tasks),
            rate_per_key=_first(over.activity_tasks_per_key, declared.activity_tasks_per_key),
            weights=all_weights,
        ),
    }


async def read_limits(client: Client, queue: Queue) -> dict[Kind, Limits]:
    """What the server holds for ``queue``'s task queue, per task type.

    Raises:
        temporalio.service.RPCError: The server refused the call.
    """
    return {kind: limits_from_config(await _config(client, queue, kind)) for kind in KINDS}


async def apply_limits(
    client: Client,
    queue: Queue,
    *,
    rate_limits: RateLimits | None = None,
    weights: Mapping[str, float] | None = None,
    dry_run: bool = False,
) -> list[LimitChange]:
    """Make the server's task queue configuration match ``queue``'s declaration.

    Args:
        client: A connected client (its namespace is the one configured).
        queue: The queue declaration.
        rate_limits: An environment's overrides of the declared rate limits.
        weights: An environment's fairness weights, on top of the declared ones.
        dry_run: Report the changes without making them.

    Returns:
        The settings that differed (empty when the server already matched).

    Raises:
        temporalio.service.RPCError: The server refused a call.
    """
    wanted = declared_limits(queue, rate_limits=rate_limits, weights=weights)
    changes: list[LimitChange] = []
    for kind in KINDS:
        want = wanted[kind]
        have = limits_from_config(await _config(client, queue, kind))
        request = UpdateTaskQueueConfigRequest(
            namespace=client.namespace,
            identity=_IDENTITY,
            task_queue=queue.task_queue,
            task_queue_type=TASK_QUEUE_TYPES[kind],
        )
        found: list[LimitChange] = []
        if not _same(have.rate, want.rate):
            found.append(LimitChange(kind, "rate", have.rate, want.rate))
            request.update_queue_rate_limit.reason = f"declared by queue {queue.name}"
            if want.rate is not None:
                request.update_queue_rate_limit.rate_limit.requests_per_second = want.rate
        if kind == "activity" and not _same(have.rate_per_key, want.rate_per_key):
            found.append(LimitChange(kind, "rate per key", have.rate_per_key, want.rate_per_key))
            update = request.update_fairness_key_rate_limit_default
            update.reason = f"declared by queue {queue.name}"
            if want.rate_per_key is not None:
                update.rate_limit.requests_per_second = want.rate_per_key
        for key in sorted(set(have.weights) | set(want.weights)):
            before, after = have.weights.get(key), want.weights.get(key)
            if _same(before, after):
                continue
            found.append(LimitChange(kind, f"weight {key}", before, after))
            if after is None:
                request.unset_fairness_weight_overrides.append(key)
            else:
                request.set_fairness_weight_overrides[key] = after
        if found and not dry_run:
            await client.workflow_service.update_task_queue_config(request)
        changes += found
    return changes


async def _config(client: Client, queue: Queue, kind: Kind) -> TaskQueueConfig:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue.task_queue),
            task_queue_type=TASK_QUEUE_TYPES[kind],
            report_config=True,
        )
    )
    return response.config


def limits_from_config(config: TaskQueueConfig) -> Limits:
    """The limits a task queue's config (``DescribeTaskQueue``'s, ``report_config``) holds."""
    rate = (
        config.queue_rate_limit.rate_limit.requests_per_second
        if config.queue_rate_limit.HasField("rate_limit")
        else None
    )
    per_key = (
        config.fairness_keys_rate_limit_default.rate_limit.requests_per_second
        if config.fairness_keys_rate_limit_default.HasField("rate_limit")
        else None
    )
    return Limits(rate=rate, rate_per_key=per_key, weights=dict(config.fairness_weight_overrides))


def limits_match(a: Limits, b: Limits) -> bool:
    """Whether two configurations are the same, as the server stores them."""
    return (
        _same(a.rate, b.rate)
        and _same(a.rate_per_key, b.rate_per_key)
        and set(a.weights) == set(b.weights)
        and all(_same(a.weights[k], b.weights[k]) for k in a.weights)
    )


def _same(a: float | None, b: float | None) -> bool:
    # The server keeps these as 32-bit floats: 0.1 comes back as 0.10000000149.
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-6)


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def _show(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"
