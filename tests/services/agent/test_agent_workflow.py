"""The agent loop on a real Temporal server: tools, rate limits, approvals, limits, input."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker
from workerkit import activities_of

from agent.activities import AgentActivities
from agent.client import approve, start_task
from agent.models import (
    AgentResult,
    AgentState,
    AgentStatus,
    AgentTask,
    Approval,
    Decision,
    Message,
    ModelReply,
    ModelRequest,
    Role,
    ToolCall,
)
from agent.providers import ProviderError, ProviderRejected
from agent.tools import Outbox, Toolbox
from agent.workflows import AgentWorkflow

from support import RecordHistory, run_cli, wait_for_query

pytestmark = pytest.mark.usefixtures("agent_worker")

MakeTask = Callable[..., AgentTask]
REFUND_PROMPT = "Please refund $12.50 for order A-1001 because it arrived damaged."


async def wait_for_state(
    handle: WorkflowHandle[Any, Any], state: AgentState, timeout: float = 20
) -> AgentStatus:
    """Poll the agent's ``status`` query until it reaches ``state``."""
    return await wait_for_query(
        handle,
        AgentWorkflow.status,
        lambda status: status.state == state,
        what=str(state),
        timeout=timeout,
    )


async def failure_of(handle: WorkflowHandle[Any, Any]) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def history(handle: WorkflowHandle[Any, Any]) -> list[HistoryEvent]:
    return [e async for e in handle.fetch_history_events()]


def scheduled(events: list[HistoryEvent]) -> list[str]:
    """The activity types the workflow scheduled, in order."""
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def count(events: list[HistoryEvent], event_type: EventType.ValueType) -> int:
    return sum(1 for e in events if e.event_type == event_type)


# -- the loop -----------------------------------------------------------------------------


async def test_calculator_loop_answers_and_records_the_transcript(
    client: Client, make_task: MakeTask, record_history: RecordHistory
) -> None:
    task = make_task("What is 12 * (3 + 4) - 5?")
    launched = await start_task(client, task)
    assert launched.started and launched.workflow_id == f"agent-{task.task_id}"
    result: AgentResult = await launched.handle.result()

    assert result.answer == "12 * (3 + 4) - 5 = 79."
    assert result.turns == 2
    assert result.tool_calls == [
        ToolCall("calculator", {"expression": "12 * (3 + 4) - 5"}, id="call-1-1")
    ]
    assert result.approvals == []
    transcript: list[Message] = await launched.handle.query(AgentWorkflow.conversation)
    assert [m.role for m in transcript] == [
        Role.SYSTEM,
        Role.USER,
        Role.ASSISTANT,
        Role.TOOL,
        Role.ASSISTANT,
    ]
    assert transcript[1].content == task.prompt
    assert transcript[2].tool_calls == result.tool_calls
    assert (transcript[3].content, transcript[3].tool_call_id) == ("79", "call-1-1")
    assert transcript[4].content == result.answer and not transcript[4].tool_calls
    status = await launched.handle.query(AgentWorkflow.status)
    assert status.state == AgentState.COMPLETED and status.turns == 2
    assert status.answer == result.answer
    events = await history(launched.handle)
    assert scheduled(events) == ["call_model", "run_tool", "call_model"]

    again = await start_task(client, task)
    assert not again.started and again.run_id == launched.run_id
    await record_history("agent", "calculator", launched.handle)


async def test_tool_errors_go_back_to_the_model(client: Client, make_task: MakeTask) -> None:
    launched = await start_task(client, make_task("What is 1 / 0, and what is 2 ^ 10?"))
    result = await launched.handle.result()
    assert result.answer == "I could not evaluate 1 / 0: division by zero. 2 ^ 10 = 1024."
    events = await history(launched.handle)
    # A bad argument is the tool's answer, not an activity failure to retry.
    assert count(events, EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED) == 0
    assert scheduled(events).count("run_tool") == 2


async def test_rate_limit_retries_after_the_providers_retry_after(
    client: Client, make_task: MakeTask, record_history: RecordHistory
) -> None:
    # The policy's own first backoff is 1s; the simulated 429 asks for 2s.
    launched = await start_task(client, make_task("[simulate-429 retry-after=2] What is 6 * 7?"))
    result = await launched.handle.result()
    assert result.answer == "6 * 7 = 42." and result.turns == 2

    events = await history(launched.handle)
    first_scheduled = next(
        e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )
    first_started = next(
        e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    )
    started = first_started.activity_task_started_event_attributes
    assert started.attempt == 2, "the first model call must have been retried once"
    failure = started.last_failure
    assert failure.application_failure_info.type == "RateLimited"
    assert not failure.application_failure_info.non_retryable
    assert failure.application_failure_info.next_retry_delay.ToTimedelta() == timedelta(seconds=2)
    waited = first_started.event_time.ToDatetime() - first_scheduled.event_time.ToDatetime()
    assert waited >= timedelta(seconds=2), f"attempt 2 started {waited} after scheduling"
    # Later model calls start at attempt 1: the 429 is simulated on the first call only.
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert attempts == [2, 1, 1]
    await record_history("agent", "rate_limited", launched.handle)


async def test_max_turns_exceeded_fails_non_retryable(
    client: Client, make_task: MakeTask, record_history: RecordHistory
) -> None:
    prompt = "Compute 1 + 1, then 2 + 2, then 3 + 3."  # 3 tool turns + the answer: 4 turns
    enough = await start_task(client, make_task(prompt, max_turns=4))
    assert (await enough.handle.result()).turns == 4

    launched = await start_task(client, make_task(prompt, max_turns=3))
    error = await failure_of(launched.handle)
    assert error.type == "MaxTurnsExceeded" and error.non_retryable
    assert error.message == "no final answer after 3 turns (3 tool calls)"
    status = await launched.handle.query(AgentWorkflow.status)
    assert status.state == AgentState.FAILED and status.error == error.message
    assert scheduled(await history(launched.handle)) == ["call_model", "run_tool"] * 3
    await record_history("agent", "max_turns_exceeded", launched.handle)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"prompt": "  "}, "prompt is empty"),
        ({"max_turns": 0}, "max_turns must be from 1 to 50"),
        ({"max_turns": 51}, "max_turns must be from 1 to 50"),
        ({"approval_timeout_seconds": 0}, "approval_timeout_seconds must be positive"),
        ({"tools": ["calculator", "shell"]}, "unknown tools ['shell']"),
    ],
)
async def test_invalid_task_fails_fast_and_non_retryable(
    client: Client, make_task: MakeTask, overrides: dict[str, Any], message: str
) -> None:
    task = dataclasses.replace(make_task("What is 1 + 1?"), **overrides)
    started = time.monotonic()
    launched = await start_task(client, task)
    error = await failure_of(launched.handle)
    assert time.monotonic() - started < 10
    assert error.type == "InvalidTask" and error.non_retryable and message in error.message
    assert scheduled(await history(launched.handle)) == []


async def test_only_the_tasks_tools_are_offered(
    client: Client, make_task: MakeTask, outbox: Outbox
) -> None:
    task = make_task(REFUND_PROMPT, tools=["calculator"])
    result = await (await start_task(client, task)).handle.result()
    assert result.answer == "I cannot issue refunds here: the issue_refund tool is not available."
    assert result.approvals == [] and outbox.refunds(task.task_id) == []


# -- the approval gate ----------------------------------------------------------------------


async def test_approved_refund_runs_the_sensitive_tool(
    client: Client, make_task: MakeTask, outbox: Outbox, record_history: RecordHistory
) -> None:
    task = make_task(REFUND_PROMPT)
    handle = (await start_task(client, task)).handle
    status = await wait_for_state(handle, AgentState.AWAITING_APPROVAL)
    pending = status.pending_approval
    expected = {"order_id": "A-1001", "amount_cents": 1250, "reason": "it arrived damaged"}
    assert pending == ToolCall("issue_refund", expected, id="call-1-1")
    assert outbox.refunds(task.task_id) == [], "nothing may be refunded before approval"

    # The validator rejects an anonymous approval and one meant for another call; a rejected
    # update changes nothing and leaves no trace in the history.
    for bad, reason in [
        (Approval(approved=True, by="  "), "the approver ('by') is empty"),
        (Approval(approved=True, by="ops", call_id="call-9-9"), "is not the one awaiting"),
    ]:
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(AgentWorkflow.approve, bad)
        assert reason in str(info.value.cause)
    assert await handle.query(AgentWorkflow.status) == status

    record = await approve(
        client, task.task_id, Approval(True, "ops@example.com", "damaged", call_id=pending.id)
    )
    assert (record.decision, record.by, record.call_id) == (
        Decision.APPROVED,
        "ops@example.com",
        "call-1-1",
    )
    result: AgentResult = await handle.result()

    refunds = outbox.refunds(task.task_id)
    assert [(r.order_id, r.amount_cents, r.reason) for r in refunds] == [
        ("A-1001", 1250, "it arrived damaged")
    ]
    assert result.approved_by == ["ops@example.com"]
    assert result.answer == (
        f"The refund of $12.50 for order A-1001 has been issued as {refunds[0].refund_id}."
    )
    events = await history(handle)
    assert count(events, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) == 1
    assert scheduled(events) == ["call_model", "run_tool", "call_model"]
    await record_history("agent", "refund_approved", handle)


async def test_denied_refund_does_not_run_and_the_model_is_told(
    client: Client, make_task: MakeTask, outbox: Outbox, record_history: RecordHistory
) -> None:
    task = make_task(REFUND_PROMPT)
    handle = (await start_task(client, task)).handle
    await wait_for_state(handle, AgentState.AWAITING_APPROVAL)
    record = await handle.execute_update(
        AgentWorkflow.approve, Approval(approved=False, by="fraud-team", note="duplicate")
    )
    assert record.decision == Decision.DENIED
    result = await handle.result()
    assert result.answer == (
        "The refund of $12.50 for order A-1001 was not issued "
        "(not run: denied by fraud-team: duplicate)."
    )
    assert [a.decision for a in result.approvals] == [Decision.DENIED]
    assert result.approved_by == []
    assert outbox.refunds(task.task_id) == []
    assert "run_tool" not in scheduled(await history(handle))
    await record_history("agent", "refund_denied", handle)


async def test_approval_timeout_denies_and_the_tool_never_runs(
    client: Client, make_task: MakeTask, outbox: Outbox, record_history: RecordHistory
) -> None:
    task = make_task(REFUND_PROMPT, approval_timeout_seconds=1.0)
    started = time.monotonic()
    handle = (await start_task(client, task)).handle
    result = await handle.result()
    assert time.monotonic() - started >= 1.0
    assert result.answer == (
        "The refund of $12.50 for order A-1001 was not issued (not run: no approval within 1s)."
    )
    assert [(a.decision, a.by) for a in result.approvals] == [(Decision.TIMED_OUT, "")]
    assert outbox.refunds(task.task_id) == []
    events = await history(handle)
    assert scheduled(events) == ["call_model", "call_model"]
    assert count(events, EventType.EVENT_TYPE_TIMER_FIRED) == 1
    await record_history("agent", "approval_timed_out", handle)


async def test_validator_rejects_approval_when_nothing_awaits_it(
    client: Client, make_task: MakeTask
) -> None:
    # The simulated 429 holds the first model call for 3s: running, not awaiting approval.
    handle = (await start_task(client, make_task("[simulate-429 retry-after=3] 6 * 7?"))).handle
    await wait_for_state(handle, AgentState.THINKING)
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(AgentWorkflow.approve, Approval(approved=True, by="ops"))
    assert "nothing awaits approval (state: thinking)" in str(info.value.cause)
    result = await handle.result()
    assert result.answer == "6 * 7 = 42." and result.approvals == []
    events = await history(handle)
    assert count(events, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) == 0


# -- a model that misbehaves ----------------------------------------------------------------

Script = list[ModelReply | ProviderError]


class ScriptedProvider:
    """Plays back a script per prompt: a model that does exactly what a test says."""

    name = "scripted"

    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.calls: dict[str, int] = {}

    def complete(self, request: ModelRequest, *, attempt: int = 1) -> ModelReply:
        prompt = next(m.content for m in request.messages if m.role == Role.USER)
        self.calls[prompt] = self.calls.get(prompt, 0) + 1
        turn = sum(1 for m in request.messages if m.role == Role.ASSISTANT)
        step = self.scripts[prompt][turn]
        if isinstance(step, ProviderError):
            raise step
        return step


@dataclasses.dataclass(frozen=True)
class Scripted:
    provider: ScriptedProvider
    task_queue: str


@pytest.fixture(scope="module")
async def scripted(client: Client, outbox: Outbox) -> AsyncIterator[Scripted]:
    """AgentWorkflow with a scripted model, on a task queue of its own."""
    provider = ScriptedProvider()
    task_queue = f"agent-scripted-{uuid.uuid4().hex[:8]}"
    activities = activities_of(AgentActivities(provider, Toolbox(outbox)))
    async with Worker(
        client, task_queue=task_queue, workflows=[AgentWorkflow], activities=activities
    ):
        yield Scripted(provider, task_queue)


async def start_scripted(
    client: Client, scripted: Scripted, task: AgentTask, script: Script
) -> WorkflowHandle[AgentWorkflow, AgentResult]:
    scripted.provider.scripts[task.prompt] = script
    return await client.start_workflow(
        AgentWorkflow.run, task, id=f"agent-{task.task_id}", task_queue=scripted.task_queue
    )


async def test_model_output_is_untrusted(
    client: Client, make_task: MakeTask, outbox: Outbox, scripted: Scripted
) -> None:
    # Three calls in one reply, all with the same id: one not allowed for this task (and
    # needing approval), one allowed, one that does not exist.
    refund = ToolCall("issue_refund", {"order_id": "A-1", "amount_cents": 99, "reason": "x"}, "c")
    calls = [
        refund,
        ToolCall("calculator", {"expression": "2 + 2"}, "c"),
        ToolCall("shell", {}, "c"),
    ]
    task = make_task(f"misbehave {uuid.uuid4().hex}", tools=["calculator"])
    handle = await start_scripted(
        client, scripted, task, [ModelReply(tool_calls=calls), ModelReply(content="done")]
    )
    result = await handle.result()

    assert result.answer == "done" and result.turns == 2 and result.approvals == []
    assert [c.id for c in result.tool_calls] == ["call-1-1", "call-1-2", "call-1-3"]
    transcript = await handle.query(AgentWorkflow.conversation)
    tool_results = [(m.tool_call_id, m.content) for m in transcript if m.role == Role.TOOL]
    assert tool_results == [
        ("call-1-1", "error: tool 'issue_refund' is not available to this task; tools: calculator"),
        ("call-1-2", "4"),
        ("call-1-3", "error: tool 'shell' is not available to this task; tools: calculator"),
    ]
    assert outbox.refunds(task.task_id) == []
    assert scheduled(await history(handle)) == ["call_model", "run_tool", "call_model"]


async def test_rejected_model_request_fails_without_retry(
    client: Client, make_task: MakeTask, scripted: Scripted
) -> None:
    task = make_task(f"bad key {uuid.uuid4().hex}")
    handle = await start_scripted(
        client, scripted, task, [ProviderRejected("answered 401: invalid api key")]
    )
    error = await failure_of(handle)
    assert error.type == "ModelCallFailed" and error.non_retryable
    assert "invalid api key" in error.message
    assert scripted.provider.calls[task.prompt] == 1, "a 4xx must not be retried"


# -- through the fleet CLI ------------------------------------------------------------------


@pytest.mark.slow
async def test_cli_starts_approves_and_reads_the_result(
    temporal_address: str, client: Client, outbox: Outbox
) -> None:
    env = {"TEMPORAL_ADDRESS": temporal_address, "TEMPORAL_NAMESPACE": "default"}

    async def fleet(*args: str) -> tuple[int, str, str]:
        done = await asyncio.to_thread(run_cli, *args, env=env)
        return done.returncode, done.stdout, done.stderr

    task_id = f"cli-{uuid.uuid4().hex[:8]}"
    task = {"task_id": task_id, "prompt": "Refund $5 for order C-3 because it was late."}
    code, out, err = await fleet("start", "agent", "AgentWorkflow", json.dumps(task))
    assert code == 0, err
    assert json.loads(out)["workflow_id"] == f"agent-{task_id}"
    await wait_for_state(
        client.get_workflow_handle(f"agent-{task_id}"), AgentState.AWAITING_APPROVAL
    )

    code, _, err = await fleet(
        "update", f"agent-{task_id}", "approve", '{"approved": true, "by": ""}'
    )
    assert code == 1 and "the approver ('by') is empty" in err
    code, out, err = await fleet(
        "update", f"agent-{task_id}", "approve", '{"approved": true, "by": "ops"}'
    )
    assert code == 0, err
    assert json.loads(out)["decision"] == "approved"
    code, out, err = await fleet("result", f"agent-{task_id}")
    assert code == 0, err
    refund_id = outbox.refunds(task_id)[0].refund_id
    assert json.loads(out)["answer"] == (
        f"The refund of $5.00 for order C-3 has been issued as {refund_id}."
    )
