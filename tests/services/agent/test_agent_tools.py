"""The agent's tools and settings: safe arithmetic, checked arguments, an idempotent outbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment
from workerkit import Database, SettingError

from agent.activities import MAX_TOOL_RESULT_CHARS, AgentActivities
from agent.models import ToolCall, ToolRequest
from agent.providers import LocalProvider
from agent.settings import MAX_REQUEST_TIMEOUT, MODEL_CALL_TIMEOUT, AgentSettings
from agent.tools import HANDBOOK, Outbox, Toolbox, ToolError, evaluate, format_number


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("12 * (3 + 4) - 5", "79"),
        ("2 ^ 10", "1024"),
        ("2 ** 64", "18446744073709551616"),
        ("10 / 4", "2.5"),
        ("1 / 3", "0.333333333333"),
        ("7 // 2 + 7 % 2", "4"),
        ("-(3 - 5) * 1.5", "3"),
    ],
)
def test_calculator_evaluates_arithmetic(expression: str, value: str) -> None:
    assert format_number(evaluate(expression)) == value


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('true')", "only numbers"),
        ("abs(-1)", "only numbers"),
        ("(1).__class__", "only numbers"),
        ("x + 1", "only numbers"),
        ("'a' * 3", "is not a number"),
        ("True + 1", "is not a number"),
        ("2 ** 1000", "exponent 1000 is too large"),
        ("9 ** 64 ** 2", "too large"),
        ("1e308 * 10", "too large"),
        ("(-8) ** 0.5", "not a real number"),
        ("1 / 0", "division by zero"),
        ("1 +", "is not an arithmetic expression"),
        ("1 + " * 100 + "1", "longer than 200 characters"),
    ],
)
def test_calculator_refuses_anything_else(expression: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        evaluate(expression)


@pytest.fixture
def toolbox(any_database: Database) -> Toolbox:
    return Toolbox(Outbox(any_database))


def test_lookup_answers_from_the_handbook(toolbox: Toolbox) -> None:
    call = ToolCall("lookup", {"topic": "support_hours"}, id="c1")
    assert toolbox.run("t", call) == HANDBOOK["support_hours"]
    with pytest.raises(ToolError, match="no handbook topic 'weather'"):
        toolbox.run("t", ToolCall("lookup", {"topic": "weather"}, id="c2"))


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("calculator", {}, "'expression' must be a non-empty string"),
        ("calculator", {"expression": 4}, "'expression' must be a non-empty string"),
        ("calculator", {"expression": "1", "mode": "x"}, "unexpected arguments \\['mode'\\]"),
        ("issue_refund", {"order_id": "A", "reason": "r"}, "'amount_cents' must be an integer"),
        ("issue_refund", {"order_id": "A", "amount_cents": 12.5, "reason": "r"}, "an integer"),
        ("issue_refund", {"order_id": "A", "amount_cents": True, "reason": "r"}, "an integer"),
        ("issue_refund", {"order_id": "A", "amount_cents": 0, "reason": "r"}, "from 1 to"),
        ("issue_refund", {"order_id": " ", "amount_cents": 5, "reason": "r"}, "'order_id'"),
        ("shell", {"cmd": "ls"}, "unknown tool 'shell'"),
    ],
)
def test_tools_check_the_models_arguments(
    toolbox: Toolbox, name: str, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        toolbox.run("t", ToolCall(name, arguments, id="c1"))
    assert toolbox.outbox.refunds("t") == []


def test_refunds_are_idempotent_by_task_and_call(toolbox: Toolbox) -> None:
    args = {"order_id": "A-1", "amount_cents": 500, "reason": "late"}
    first = toolbox.run("task-1", ToolCall("issue_refund", args, id="call-1-1"))
    retried = toolbox.run("task-1", ToolCall("issue_refund", args, id="call-1-1"))
    assert retried == first, "a retried call returns the first refund"
    assert [r.amount_cents for r in toolbox.outbox.refunds("task-1")] == [500]
    toolbox.run("task-1", ToolCall("issue_refund", args, id="call-2-1"))
    toolbox.run("task-2", ToolCall("issue_refund", args, id="call-1-1"))
    assert len(toolbox.outbox.refunds("task-1")) == 2
    assert len(toolbox.outbox.refunds("task-2")) == 1


async def test_run_tool_returns_tool_errors_to_the_model(
    toolbox: Toolbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    activities = AgentActivities(LocalProvider(), toolbox)
    env = ActivityEnvironment()
    bad = ToolRequest("t", ToolCall("calculator", {"expression": "1 / 0"}, id="c1"))
    assert await env.run(activities.run_tool, bad) == "error: division by zero"
    good = ToolRequest("t", ToolCall("calculator", {"expression": "6 * 7"}, id="c2"))
    assert await env.run(activities.run_tool, good) == "42"
    monkeypatch.setattr(toolbox, "run", lambda task_id, call: "x" * 10_000)
    long = await env.run(activities.run_tool, good)
    assert len(long) < MAX_TOOL_RESULT_CHARS + 20 and long.endswith("(truncated)")


# -- settings ---------------------------------------------------------------------------------


def test_settings_default_to_the_local_provider() -> None:
    settings = AgentSettings.from_env({})
    assert settings.provider == "local" and settings.request_timeout == timedelta(seconds=60)
    assert MAX_REQUEST_TIMEOUT < MODEL_CALL_TIMEOUT


def test_settings_for_an_openai_compatible_endpoint() -> None:
    settings = AgentSettings.from_env(
        {
            "AGENT_PROVIDER": "OpenAI",
            "AGENT_BASE_URL": "http://127.0.0.1:8000/v1/",
            "AGENT_API_KEY": "sk-secret",
            "AGENT_MODEL": "qwen2.5",
            "AGENT_REQUEST_TIMEOUT": "90s",
        }
    )
    assert settings.provider == "openai" and settings.model == "qwen2.5"
    assert settings.base_url == "http://127.0.0.1:8000/v1"
    assert settings.request_timeout == timedelta(seconds=90)
    assert settings.api_key == "sk-secret" and "sk-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"AGENT_PROVIDER": "anthropic"}, "AGENT_PROVIDER"),
        ({"AGENT_PROVIDER": "openai"}, "AGENT_MODEL"),
        ({"AGENT_BASE_URL": "llm:8000"}, "AGENT_BASE_URL"),
        ({"AGENT_REQUEST_TIMEOUT": "0s"}, "AGENT_REQUEST_TIMEOUT"),
        ({"AGENT_REQUEST_TIMEOUT": "5m"}, "AGENT_REQUEST_TIMEOUT"),
        ({"AGENT_REQUEST_TIMEOUT": "soon"}, "AGENT_REQUEST_TIMEOUT"),
    ],
)
def test_settings_reject_bad_values(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingError) as info:
        AgentSettings.from_env(environ)
    assert info.value.variable == variable
