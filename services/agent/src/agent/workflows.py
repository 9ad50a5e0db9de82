"""The agent workflow: a durable model ↔ tools loop with a human approval gate.

The workflow holds the conversation; every model call and every tool call is an activity,
so a worker crash resumes the loop where it was, and each call has its own timeout and retry
policy. Model output is untrusted: the workflow runs only tools the task allows, assigns the
call ids itself, and never runs a tool that needs approval without a human's decision.
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workerkit import failure_reason

    from agent.activities import AgentActivities
    from agent.models import (
        AgentResult,
        AgentState,
        AgentStatus,
        AgentTask,
        Approval,
        ApprovalRecord,
        Decision,
        Message,
        ModelRequest,
        Role,
        ToolCall,
        ToolRequest,
        ToolSpec,
        task_problem,
    )
    from agent.settings import MODEL_CALL_TIMEOUT
    from agent.tools import TOOL_SPECS

# Model calls: rate limits and overloads are routine, so back off up to a minute. A 429's
# Retry-After overrides the backoff through the failure's next_retry_delay.
MODEL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=8,
    non_retryable_error_types=["ModelRequestRejected"],
)
TOOL_TIMEOUT = timedelta(seconds=30)
TOOL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)


@workflow.defn
class AgentWorkflow:
    """Call the model; run the tools it asks for (after approval where needed); repeat until
    it answers or ``max_turns`` model calls have been made."""

    @workflow.init
    def __init__(self, task: AgentTask) -> None:
        self._task = task
        self._conversation: list[Message] = []
        self._status = AgentStatus(task_id=task.task_id, state=AgentState.RECEIVED)
        self._decision: ApprovalRecord | None = None

    @workflow.run
    async def run(self, task: AgentTask) -> AgentResult:
        problem = task_problem(task, TOOL_SPECS)
        if problem:
            raise self._fail(f"invalid task: {problem}", "InvalidTask")
        names = list(TOOL_SPECS) if task.tools is None else task.tools
        tools = [TOOL_SPECS[n] for n in TOOL_SPECS if n in names]
        self._conversation = [
            Message(Role.SYSTEM, task.system_prompt),
            Message(Role.USER, task.prompt),
        ]
        for turn in range(1, task.max_turns + 1):
            self._status.turns = turn
            self._status.state = AgentState.THINKING
            try:
                reply = await workflow.execute_activity_method(
                    AgentActivities.call_model,
                    ModelRequest(task.task_id, list(self._conversation), tools),
                    start_to_close_timeout=MODEL_CALL_TIMEOUT,
                    retry_policy=MODEL_RETRY,
                )
            except ActivityError as err:
                raise self._fail(
                    f"model call failed: {failure_reason(err)}", "ModelCallFailed"
                ) from err
            # The workflow names the calls: unique within the task whatever the provider sent,
            # so "<task_id>/<call id>" is a sound idempotency key for a tool's side effect.
            calls = [
                dataclasses.replace(c, id=f"call-{turn}-{i}")
                for i, c in enumerate(reply.tool_calls, start=1)
            ]
            self._conversation.append(Message(Role.ASSISTANT, reply.content, tool_calls=calls))
            if not calls:
                self._status.state = AgentState.COMPLETED
                self._status.answer = reply.content
                return AgentResult(
                    task_id=task.task_id,
                    answer=reply.content,
                    turns=turn,
                    tool_calls=list(self._status.tool_calls),
                    approvals=list(self._status.approvals),
                )
            for call in calls:
                self._status.tool_calls.append(call)
                result = await self._use_tool(call, tools)
                self._conversation.append(
                    Message(Role.TOOL, result, tool_call_id=call.id, name=call.name)
                )
        raise self._fail(
            f"no final answer after {task.max_turns} turns "
            f"({len(self._status.tool_calls)} tool calls)",
            "MaxTurnsExceeded",
        )

    def _fail(self, message: str, error_type: str) -> ApplicationError:
        self._status.state = AgentState.FAILED
        self._status.error = message
        return ApplicationError(message, type=error_type, non_retryable=True)

    async def _use_tool(self, call: ToolCall, tools: list[ToolSpec]) -> str:
        """Run ``call`` and return its result; a call that must not run returns why not."""
        spec = next((t for t in tools if t.name == call.name), None)
        if spec is None:
            offered = ", ".join(t.name for t in tools) or "none"
            return f"error: tool {call.name!r} is not available to this task; tools: {offered}"
        if spec.requires_approval:
            record = await self._await_approval(call)
            self._status.approvals.append(record)
            if record.decision == Decision.DENIED:
                note = f": {record.note}" if record.note else ""
                return f"not run: denied by {record.by}{note}"
            if record.decision == Decision.TIMED_OUT:
                return f"not run: {record.note}"
        self._status.state = AgentState.RUNNING_TOOL
        try:
            return await workflow.execute_activity_method(
                AgentActivities.run_tool,
                ToolRequest(self._task.task_id, call),
                start_to_close_timeout=TOOL_TIMEOUT,
                retry_policy=TOOL_RETRY,
            )
        except ActivityError as err:
            raise self._fail(
                f"tool {call.name} failed: {failure_reason(err)}", "ToolFailed"
            ) from err

    async def _await_approval(self, call: ToolCall) -> ApprovalRecord:
        """Wait for the ``approve`` update, at most ``approval_timeout_seconds``."""
        timeout = self._task.approval_timeout_seconds
        self._status.state = AgentState.AWAITING_APPROVAL
        self._status.pending_approval = call
        self._decision = None
        workflow.logger.info("awaiting approval", extra={"call_id": call.id, "tool": call.name})
        # On timeout, a decision accepted in the same workflow task as the timer still counts.
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._decision is not None,
                timeout=timedelta(seconds=timeout),
                timeout_summary=f"approval of {call.id}",
            )
        decision, self._decision = self._decision, None
        self._status.pending_approval = None
        self._status.state = AgentState.THINKING
        if decision is None:
            return ApprovalRecord(
                call.id, call.name, Decision.TIMED_OUT, note=f"no approval within {timeout:g}s"
            )
        return decision

    @workflow.query
    def status(self) -> AgentStatus:
        """State, turn count, the call awaiting approval, decisions, answer or error."""
        return self._status

    @workflow.query
    def conversation(self) -> list[Message]:
        """The transcript: system, user, assistant (with tool calls) and tool messages."""
        return self._conversation

    @workflow.update
    def approve(self, approval: Approval) -> ApprovalRecord:
        """Approve (or deny, with ``approved=False``) the tool call awaiting approval."""
        call = self._status.pending_approval
        assert call is not None  # the validator admits an update only while one is pending
        self._decision = ApprovalRecord(
            call_id=call.id,
            tool=call.name,
            decision=Decision.APPROVED if approval.approved else Decision.DENIED,
            by=approval.by.strip(),
            note=approval.note,
        )
        return self._decision

    @approve.validator
    def _validate_approval(self, approval: Approval) -> None:
        call = self._status.pending_approval
        if call is None:
            raise ValueError(f"nothing awaits approval (state: {self._status.state})")
        if self._decision is not None:
            raise ValueError(
                f"{call.id} was already {self._decision.decision} by {self._decision.by}"
            )
        if not approval.by.strip():
            raise ValueError("the approver ('by') is empty")
        if approval.call_id is not None and approval.call_id != call.id:
            raise ValueError(
                f"call {approval.call_id!r} is not the one awaiting approval ({call.id})"
            )
