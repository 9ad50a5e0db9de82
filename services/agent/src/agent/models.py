"""Typed inputs and outputs of the agent workflow, its model calls and its tool calls.

Everything here crosses the Temporal boundary (workflow input, activity input and output,
query and update payloads), so it is plain dataclasses that the default JSON converter
round-trips, and nothing in this module does I/O.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

DEFAULT_SYSTEM_PROMPT = (
    "You are a careful operations assistant. Use the tools you are given for arithmetic, "
    "facts from the handbook and refunds; never invent a tool result. Refunds need a human's "
    "approval: if a tool result says an action was not run, tell the user so. When you have "
    "what you need, answer in a few sentences."
)
MAX_TURNS_LIMIT = 50
MAX_PROMPT_CHARS = 20_000
MAX_TASK_ID_CHARS = 200


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


@dataclass(frozen=True)
class ToolCall:
    """The model asks to run tool ``name`` with ``arguments`` (a JSON object).

    ``id`` pairs the call with its result message. The workflow assigns it
    (``call-<turn>-<n>``, unique within a task) whatever the provider sent, so it is
    also the idempotency key of the call's side effect.
    """

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str = ""


@dataclass(frozen=True)
class Message:
    """One entry of the conversation.

    A list of tool calls (rather than at most one) because OpenAI-compatible models may
    ask for several in one reply, and every call must be answered by a ``tool`` message
    carrying its ``tool_call_id`` before the model is called again.
    """

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)  # assistant: tools to run
    tool_call_id: str | None = None  # tool: the call this result answers
    name: str | None = None  # tool: the tool's name


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it; ``parameters`` is a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, Any]
    requires_approval: bool = False


@dataclass(frozen=True)
class ModelRequest:
    """Input of the ``call_model`` activity: the conversation so far and the allowed tools."""

    task_id: str
    messages: list[Message]
    tools: list[ToolSpec]


@dataclass(frozen=True)
class ModelReply:
    """Output of ``call_model``: tool calls to run, or (with none) the final answer."""

    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    model: str = ""


@dataclass(frozen=True)
class ToolRequest:
    """Input of the ``run_tool`` activity."""

    task_id: str
    call: ToolCall


@dataclass(frozen=True)
class AgentTask:
    """What a caller submits.

    Attributes:
        task_id: Identifies the task; the workflow id is ``agent-<task_id>``.
        prompt: The user's request.
        max_turns: How many model calls the task may make; a task that has no final
            answer after that many fails with a non-retryable ``MaxTurnsExceeded``.
        approval_timeout_seconds: How long a tool that needs approval waits for the
            ``approve`` update; after that the call is not run and the model is told so.
        tools: Names of the tools the model may use; ``None`` allows every tool.
        system_prompt: The first message of the conversation.
    """

    task_id: str
    prompt: str
    max_turns: int = 8
    approval_timeout_seconds: float = 3600.0
    tools: list[str] | None = None
    system_prompt: str = DEFAULT_SYSTEM_PROMPT


class AgentState(StrEnum):
    RECEIVED = "received"
    THINKING = "thinking"  # a model call is running (or waiting for its retry)
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING_TOOL = "running_tool"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True)
class Approval:
    """Payload of the ``approve`` update.

    Attributes:
        approved: ``False`` denies the pending call.
        by: Who decided; must not be empty (it is the audit trail).
        note: Why, shown to the model with a denial.
        call_id: If set, the decision applies only if this is the pending call's id, so
            a late decision can never land on a different call than the one reviewed.
    """

    approved: bool
    by: str
    note: str = ""
    call_id: str | None = None


class Decision(StrEnum):
    APPROVED = "approved"
    DENIED = "denied"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class ApprovalRecord:
    """What happened to one call that needed approval."""

    call_id: str
    tool: str
    decision: Decision
    by: str = ""
    note: str = ""


@dataclass
class AgentStatus:
    """Answer of the ``status`` query (the transcript is the ``conversation`` query)."""

    task_id: str
    state: AgentState
    turns: int = 0
    pending_approval: ToolCall | None = None
    approvals: list[ApprovalRecord] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    answer: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class AgentResult:
    """The workflow's result."""

    task_id: str
    answer: str
    turns: int
    tool_calls: list[ToolCall]
    approvals: list[ApprovalRecord]

    @property
    def approved_by(self) -> list[str]:
        """Who approved the calls that ran after an approval."""
        return [a.by for a in self.approvals if a.decision == Decision.APPROVED]


MAX_APPROVAL_TIMEOUT_S = 30 * 86400.0


def task_problem(task: AgentTask, known_tools: Collection[str]) -> str | None:
    """Return why ``task`` can never be processed, or ``None`` if it is well-formed."""
    if not task.task_id.strip():
        return "task_id is empty"
    if len(task.task_id) > MAX_TASK_ID_CHARS:
        return f"task_id is longer than {MAX_TASK_ID_CHARS} characters"
    if not task.prompt.strip():
        return "prompt is empty"
    if len(task.prompt) > MAX_PROMPT_CHARS:
        return f"prompt is longer than {MAX_PROMPT_CHARS} characters"
    if not 1 <= task.max_turns <= MAX_TURNS_LIMIT:
        return f"max_turns must be from 1 to {MAX_TURNS_LIMIT}, got {task.max_turns}"
    if not 0 < task.approval_timeout_seconds <= MAX_APPROVAL_TIMEOUT_S:
        # A timer Temporal cannot represent would fail the workflow task, not the workflow.
        return (
            "approval_timeout_seconds must be positive and at most "
            f"{MAX_APPROVAL_TIMEOUT_S:g} (30 days)"
        )
    if task.tools is not None:
        unknown = sorted(set(task.tools) - set(known_tools))
        if unknown:
            return f"unknown tools {unknown}; known tools: {sorted(known_tools)}"
    return None
