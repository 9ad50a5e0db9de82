"""The agent queue declaration: registered through the ``workerkit.queues`` entry point."""

from temporalio.common import VersioningBehavior
from workerkit import Queue, Tuning

from agent.activities import create_activities
from agent.ids import task_workflow_id
from agent.workflows import AgentWorkflow

QUEUE = Queue(
    name="agent",
    version=1,
    description=(
        "Durable AI agent loop: model and tool calls as activities, Retry-After as "
        "next_retry_delay, human approval update with validator and timeout."
    ),
    workflows=[AgentWorkflow],
    activities=create_activities,
    # Model calls are slow and mostly waiting on the provider: a modest slot count keeps one
    # worker from bursting past a provider's rate limit.
    tuning=Tuning(max_concurrent_activities=20),
    workflow_ids={AgentWorkflow: lambda task: task_workflow_id(task.task_id)},
    # A conversation may wait days for an approval: it moves to each new build, so every
    # change to AgentWorkflow must be guarded by workflow.patched().
    versioning=VersioningBehavior.AUTO_UPGRADE,
    migrations="agent.migrations",
    histories="agent.histories",
    # A model call may take up to 2 minutes (MODEL_CALL_TIMEOUT), beyond the shutdown timeout,
    # and cutting one pays for the call again: its in-flight work must never be cut.
    shape="long-activities",
)
