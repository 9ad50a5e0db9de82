"""Fleet operations served by every worker process: rollouts and their gates.

Two small workers beside a process's queue workers, so that operating the fleet needs
nothing deployed beyond the queues themselves:

- the operations task queue (:data:`~workerkit._rollout.OPS_TASK_QUEUE`, unversioned): the
  rollout workflows and their activities, which only talk to the server (and Prometheus).
  Any process of any queue may run them, so a rollout goes on while any worker lives;
- per versioned queue, its build's gate task queue (:func:`~workerkit._rollout.gate_task_queue`):
  the replay gate, which must run the new build's own code and so only that build polls.

Both poll with the fewest pollers the SDK allows and cache few workflows: they are idle
between deploys. ``WORKER_FLEET_OPERATIONS=false`` keeps a process off the operations queue
(rollouts then run in other processes); a versioned worker serves its gate either way, since
no other process has its build's code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, UnsandboxedWorkflowRunner, Worker
from workerkit._catch_all import UnknownWorkflowType, declare_known
from workerkit._plugin import WorkerkitPlugin
from workerkit._registry import Queue
from workerkit._rollout import (
    OPS_TASK_QUEUE,
    RetireBuildsWorkflow,
    RolloutWorkflow,
    gate_task_queue,
)
from workerkit._rollout_activities import RolloutActivities, replay_activity
from workerkit._settings import WorkerSettings
from workerkit._versioning import VersioningRunner, WorkerVersion

__all__ = ["build_ops_workers"]


def defn_name(cls: type) -> str:
    """The workflow type name ``cls`` is registered under."""
    return workflow._Definition.must_from_class(cls).name or cls.__name__


# The SDK's minimum for workflow task pollers (one sticky, one normal); activities need one.
_WORKFLOW_POLLERS = 2
_ACTIVITY_POLLERS = 1


def build_ops_workers(
    client: Client,
    queues: Sequence[Queue],
    versions: Mapping[str, WorkerVersion],
    settings: WorkerSettings,
) -> list[Worker]:
    """The operations worker (unless turned off) and a gate worker per versioned queue."""
    config = client.config()
    others = [p for p in config.get("plugins", []) if not isinstance(p, WorkerkitPlugin)]
    config["plugins"] = [*others, WorkerkitPlugin(sandbox=settings.workflow_sandbox)]
    ops_client = Client(**config)
    workers = []
    if settings.fleet_operations:
        operations = [RolloutWorkflow, RetireBuildsWorkflow]
        # A start of any other type there (a typo in the temporal CLI) fails at once, as on
        # the queues, instead of retrying its workflow task forever.
        declare_known(OPS_TASK_QUEUE, "fleet operations", [defn_name(w) for w in operations])
        workers.append(
            Worker(
                ops_client,
                task_queue=OPS_TASK_QUEUE,
                workflows=[*operations, UnknownWorkflowType],
                # The catch-all declares a behavior, which an unversioned worker must not send.
                unsandboxed_workflow_runner=VersioningRunner(UnsandboxedWorkflowRunner(), None),
                activities=RolloutActivities(ops_client).all(),
                max_cached_workflows=10,
                max_concurrent_activities=10,
                workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(_WORKFLOW_POLLERS),
                activity_task_poller_behavior=PollerBehaviorSimpleMaximum(_ACTIVITY_POLLERS),
                graceful_shutdown_timeout=settings.shutdown_timeout,
            )
        )
    for queue in queues:
        version = versions[queue.name]
        if not version.versioned:
            continue
        workers.append(
            Worker(
                ops_client,
                task_queue=gate_task_queue(version.deployment_name, version.build_id),
                activities=[replay_activity(ops_client, queue)],
                max_concurrent_activities=1,
                activity_task_poller_behavior=PollerBehaviorSimpleMaximum(_ACTIVITY_POLLERS),
                graceful_shutdown_timeout=settings.shutdown_timeout,
            )
        )
    return workers
