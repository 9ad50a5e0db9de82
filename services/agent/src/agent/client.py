"""Launch and approval helpers for callers of the agent queue."""

from __future__ import annotations

from temporalio.client import Client
from workerkit import Launched, launch

from agent.ids import task_workflow_id
from agent.models import AgentResult, AgentTask, Approval, ApprovalRecord
from agent.queue import QUEUE
from agent.workflows import AgentWorkflow


async def start_task(client: Client, task: AgentTask) -> Launched[AgentResult]:
    """Start the task's workflow; a second call for the same task returns the first run."""
    return await launch(
        client,
        QUEUE,
        AgentWorkflow.run,
        task,
        memo={"max_turns": task.max_turns, "tools": task.tools},
    )


async def approve(client: Client, task_id: str, approval: Approval) -> ApprovalRecord:
    """Decide on the call that task ``task_id`` awaits approval for.

    Raises:
        temporalio.client.WorkflowUpdateFailedError: Nothing awaits approval, the approver
            is empty, or ``approval.call_id`` names another call.
    """
    handle = client.get_workflow_handle_for(AgentWorkflow.run, task_workflow_id(task_id))
    return await handle.execute_update(AgentWorkflow.approve, approval)
