"""The agent queue declaration: registered through the ``workerkit.queues`` entry point."""

from workerkit import Queue, Tuning

from agent.activities import create_activities
from agent.ids import request_workflow_id
from agent.workflows import AgentWorkflow

QUEUE = Queue(
    name="agent",
    version=1,
    description="The agent queue.",
    workflows=[AgentWorkflow],
    activities=create_activities,
    tuning=Tuning(),
    workflow_ids={AgentWorkflow: lambda request: request_workflow_id(request.request_id)},
)
