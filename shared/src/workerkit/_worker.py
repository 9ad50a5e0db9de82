"""The worker factory: one Temporal worker for one queue, with every interceptor attached."""

from __future__ import annotations

import concurrent.futures
import inspect
from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import (
    FixedSizeSlotSupplier,
    PollerBehavior,
    PollerBehaviorAutoscaling,
    PollerBehaviorSimpleMaximum,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkerTuner,
)
from workerkit._arity import ArityRunner
from workerkit._catch_all import UnknownWorkflowType, declare_known
from workerkit._child_priority import queue_interceptors
from workerkit._exceptions import ConfigurationError
from workerkit._plugin import WorkerkitPlugin
from workerkit._registry import Queue, optional_parameters
from workerkit._settings import WorkerSettings
from workerkit._signals import install_dropped_signal_handling
from workerkit._slots import activity_slots
from workerkit._versioning import VersioningRunner, WorkerVersion

__all__ = ["build_worker"]


def _tuner(settings: WorkerSettings) -> WorkerTuner:
    if settings.tuner == "resource":
        return WorkerTuner.create_resource_based(
            target_memory_usage=settings.resource_target_memory,
            target_cpu_usage=settings.resource_target_cpu,
        )
    return WorkerTuner.create_composite(
        workflow_supplier=FixedSizeSlotSupplier(settings.max_concurrent_workflow_tasks),
        activity_supplier=FixedSizeSlotSupplier(settings.max_concurrent_activities),
        local_activity_supplier=FixedSizeSlotSupplier(settings.max_concurrent_local_activities),
        nexus_supplier=FixedSizeSlotSupplier(1),
    )


def _pollers(settings: WorkerSettings) -> PollerBehavior:
    if settings.poller_autoscaling:
        return PollerBehaviorAutoscaling(maximum=settings.max_pollers)
    return PollerBehaviorSimpleMaximum(maximum=settings.max_pollers)


def _needs_thread_pool(activities: list[Callable[..., Any]]) -> bool:
    return any(not inspect.iscoroutinefunction(a) for a in activities)


def _catch_all(queue: Queue) -> list[type]:
    # A queue that declares a dynamic workflow of its own handles unknown types itself.
    if any(workflow._Definition.must_from_class(w).name is None for w in queue.workflows):
        return []
    declare_known(queue.task_queue, queue.name, list(queue.workflow_types()))
    return [UnknownWorkflowType]


def build_worker(
    client: Client, queue: Queue, settings: WorkerSettings, version: WorkerVersion | None = None
) -> Worker:
    """Create the worker for ``queue``, through the project's plugin (:class:`WorkerkitPlugin`).

    Args:
        client: A connected client.
        queue: The queue declaration.
        settings: Tuning and shutdown settings (see :class:`WorkerSettings`).
        version: The Worker Deployment version; ``None`` runs unversioned.
    """
    # Whatever client it is given, the worker goes through the project's plugin with this
    # queue's interceptors: one place decides how payloads look, what is traced, logged and
    # counted, and what runs workflows (see _plugin). The Worker takes it from its client.
    versioned = version is not None and version.versioned
    behaviors = queue.versioning_behaviors() if versioned else None
    plugin = WorkerkitPlugin(
        interceptors=queue_interceptors(queue),
        sandbox=settings.workflow_sandbox,
        versioning_behaviors=behaviors,
    )
    config = client.config()
    others = [p for p in config.get("plugins", []) if not isinstance(p, WorkerkitPlugin)]
    config["plugins"] = [*others, plugin]
    client = Client(**config)
    install_dropped_signal_handling()
    with activity_slots(settings.max_concurrent_activities):  # sizes a database pool
        activities = queue.build_activities()
    for fn in activities:
        problem = optional_parameters(fn)
        if problem:
            name = getattr(fn, "__name__", repr(fn))
            raise ConfigurationError(f"queue {queue.name!r}: activity {name} {problem}")
    executor = None
    if _needs_thread_pool(activities):
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.max_concurrent_activities,
            thread_name_prefix=f"{queue.name}-activity",
        )
    return Worker(
        client,
        # For a workflow declared @workflow.defn(sandboxed=False); the plugin sets the other.
        unsandboxed_workflow_runner=VersioningRunner(
            ArityRunner(UnsandboxedWorkflowRunner()), behaviors
        ),
        task_queue=queue.task_queue,
        workflows=[*queue.workflows, *_catch_all(queue)],
        activities=activities,
        activity_executor=executor,
        tuner=_tuner(settings),
        max_cached_workflows=settings.max_cached_workflows,
        workflow_task_poller_behavior=_pollers(settings),
        activity_task_poller_behavior=_pollers(settings),
        graceful_shutdown_timeout=settings.shutdown_timeout,
        # An activity started eagerly (handed back with the workflow task that scheduled it)
        # never enters the task queue, so the server's rate limit never sees it. Eager starts
        # save a poll per activity (about 5% of the orders saga's CPU): kept where no limit is.
        disable_eager_activity_execution=queue.limits_activities(),
        deployment_config=version.deployment_config() if versioned and version else None,
    )
