"""Model providers: the local planner, the OpenAI-compatible client against a local HTTP
server, and how the activity turns their errors into Temporal retry decisions."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message as HttpHeaders
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from workerkit import Database

from agent.activities import AgentActivities
from agent.models import Message, ModelReply, ModelRequest, Role, ToolCall
from agent.providers import (
    BadModelResponse,
    LocalProvider,
    OpenAICompatibleProvider,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    make_provider,
    retry_after_seconds,
)
from agent.settings import AgentSettings
from agent.tools import CALCULATOR, ISSUE_REFUND, LOOKUP, TOOL_SPECS, Outbox, Toolbox

from support import free_port

ALL_TOOLS = list(TOOL_SPECS.values())


def request(prompt: str, *history: Message, tools: list[Any] | None = None) -> ModelRequest:
    messages = [Message(Role.SYSTEM, "be brief"), Message(Role.USER, prompt), *history]
    return ModelRequest("t-1", messages, ALL_TOOLS if tools is None else tools)


# -- LocalProvider ---------------------------------------------------------------------------


def test_local_provider_plans_one_call_per_turn_then_summarises() -> None:
    provider = LocalProvider()
    prompt = "What is 2 + 3, and what is the support hours policy? Then 10 / 4."
    history: list[Message] = []
    results = {"2 + 3": "5", "10 / 4": "2.5", "support_hours": "Weekdays."}
    expected = [
        ("calculator", {"expression": "2 + 3"}),
        ("lookup", {"topic": "support_hours"}),
        ("calculator", {"expression": "10 / 4"}),
    ]
    for turn, (name, arguments) in enumerate(expected, start=1):
        reply = provider.complete(request(prompt, *history))
        assert reply == provider.complete(request(prompt, *history)), "must be deterministic"
        assert not reply.content and [(c.name, c.arguments) for c in reply.tool_calls] == [
            (name, arguments)
        ]
        call = dataclasses.replace(reply.tool_calls[0], id=f"call-{turn}-1")
        result = results[str(next(iter(arguments.values())))]
        history += [
            Message(Role.ASSISTANT, tool_calls=[call]),
            Message(Role.TOOL, result, tool_call_id=call.id, name=name),
        ]
    final = provider.complete(request(prompt, *history))
    assert final.tool_calls == []
    assert final.content == "2 + 3 = 5. Support hours: Weekdays. 10 / 4 = 2.5."


def test_local_provider_uses_only_the_offered_tools() -> None:
    prompt = "Refund $3 for order Z-9 and compute 2 * 21"
    reply = LocalProvider().complete(request(prompt, tools=[CALCULATOR, LOOKUP]))
    assert [c.name for c in reply.tool_calls] == ["calculator"]
    reply = LocalProvider().complete(request(prompt, tools=[ISSUE_REFUND]))
    assert reply.tool_calls[0].arguments == {
        "order_id": "Z-9",
        "amount_cents": 300,
        "reason": "requested by the customer",
    }
    reply = LocalProvider().complete(request(prompt, tools=[]))
    assert reply.content == (
        "I cannot calculate here: the calculator tool is not available to this task. "
        "I cannot issue refunds here: the issue_refund tool is not available."
    )


def test_local_provider_simulates_a_429_on_the_first_call_only() -> None:
    provider = LocalProvider()
    prompt = "[simulate-429 retry-after=1.5] 6 * 7"
    with pytest.raises(RateLimited) as info:
        provider.complete(request(prompt), attempt=1)
    assert info.value.retry_after == 1.5
    reply = provider.complete(request(prompt), attempt=2)
    call = dataclasses.replace(reply.tool_calls[0], id="call-1-1")
    assert call.arguments == {"expression": "6 * 7"}, "the marker is not part of the plan"
    later = request(
        prompt,
        Message(Role.ASSISTANT, tool_calls=[call]),
        Message(Role.TOOL, "42", tool_call_id="call-1-1"),
    )
    assert provider.complete(later, attempt=1).content == "6 * 7 = 42."

    twice = "[simulate-429 times=2] 1 + 1"
    for attempt in (1, 2):
        with pytest.raises(RateLimited) as info:
            provider.complete(request(twice), attempt=attempt)
        assert info.value.retry_after is None
    assert provider.complete(request(twice), attempt=3).tool_calls


# -- OpenAICompatibleProvider against a local server ---------------------------------------


@dataclasses.dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


class FakeOpenAI:
    """Answers each POST with the next queued response and records what it received."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.responses: list[tuple[int, dict[str, str], bytes]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                fake.requests.append(Recorded(self.path, dict(self.headers), body))
                status, headers, payload = fake.responses.pop(0)
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}/v1"

    def respond(self, status: int, body: Any, **headers: str) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.responses.append((status, headers, payload))

    def provider(self, api_key: str | None = "sk-test") -> OpenAICompatibleProvider:
        return OpenAICompatibleProvider(
            base_url=self.base_url, model="test-model", api_key=api_key, timeout=5
        )


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    # shutdown() waits for the loop's next poll: 0.5 s per test by default.
    thread = threading.Thread(
        target=fake.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def completion(message: dict[str, Any]) -> dict[str, Any]:
    return {"model": "test-model-0613", "choices": [{"index": 0, "message": message}]}


TOOL_CALL_MESSAGE = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {
            "id": "call_abc",
            "type": "function",
            "function": {"name": "calculator", "arguments": '{"expression": "2 + 2"}'},
        }
    ],
}


def test_openai_provider_sends_the_conversation_and_parses_a_tool_call(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.respond(200, completion(TOOL_CALL_MESSAGE))
    earlier = ToolCall("lookup", {"topic": "shipping_time"}, id="call-1-1")
    reply = fake_openai.provider().complete(
        request(
            "How long is shipping, and 2 + 2?",
            Message(Role.ASSISTANT, tool_calls=[earlier]),
            Message(Role.TOOL, "3-5 days", tool_call_id="call-1-1", name="lookup"),
            tools=[CALCULATOR, LOOKUP],
        )
    )

    assert reply == ModelReply(
        content="",
        tool_calls=[ToolCall("calculator", {"expression": "2 + 2"}, id="call_abc")],
        model="test-model-0613",
    )
    [sent] = fake_openai.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == "Bearer sk-test"
    assert sent.body["model"] == "test-model"
    assert sent.body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "How long is shipping, and 2 + 2?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call-1-1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"topic": "shipping_time"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call-1-1", "content": "3-5 days"},
    ]
    assert [t["function"]["name"] for t in sent.body["tools"]] == ["calculator", "lookup"]
    assert sent.body["tools"][0] == {
        "type": "function",
        "function": {
            "name": "calculator",
            "description": CALCULATOR.description,
            "parameters": CALCULATOR.parameters,
        },
    }


def test_openai_provider_parses_a_final_answer_without_a_key(fake_openai: FakeOpenAI) -> None:
    fake_openai.respond(200, completion({"role": "assistant", "content": "It is 4."}))
    reply = fake_openai.provider(api_key=None).complete(request("2 + 2?", tools=[]))
    assert (reply.content, reply.tool_calls) == ("It is 4.", [])
    [sent] = fake_openai.requests
    assert "Authorization" not in sent.headers and "tools" not in sent.body


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [({"Retry-After": "7"}, 7.0), ({"retry-after-ms": "1500"}, 1.5), ({}, None)],
)
def test_openai_provider_429_is_rate_limited_and_not_retried(
    fake_openai: FakeOpenAI, headers: dict[str, str], retry_after: float | None
) -> None:
    fake_openai.respond(429, {"error": {"message": "Rate limit reached"}}, **headers)
    fake_openai.respond(200, completion({"role": "assistant", "content": "too late"}))
    with pytest.raises(RateLimited) as info:
        fake_openai.provider().complete(request("hi"))
    assert info.value.retry_after == retry_after
    assert "answered 429: Rate limit reached" in str(info.value)
    assert len(fake_openai.requests) == 1, "the client must not retry on its own"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ProviderRejected),
        (401, ProviderRejected),
        (404, ProviderRejected),
        (422, ProviderRejected),
        (408, ProviderUnavailable),
        (500, ProviderUnavailable),
        (503, ProviderUnavailable),
    ],
)
def test_openai_provider_maps_http_errors_without_retrying(
    fake_openai: FakeOpenAI, status: int, error: type[Exception]
) -> None:
    fake_openai.respond(status, {"error": {"message": f"status {status}"}})
    fake_openai.respond(200, completion({"role": "assistant", "content": "too late"}))
    with pytest.raises(error, match=f"answered {status}: status {status}"):
        fake_openai.provider().complete(request("hi"))
    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"<html>gateway</html>",
        completion({"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}),
        completion(
            {"role": "assistant", "tool_calls": [{"function": {"name": "x", "arguments": "{"}}]}
        ),
        {"choices": []},
    ],
)
def test_openai_provider_rejects_a_malformed_completion(fake_openai: FakeOpenAI, body: Any) -> None:
    fake_openai.respond(200, body)
    with pytest.raises(BadModelResponse):
        fake_openai.provider().complete(request("hi"))


def test_openai_provider_unreachable_is_retryable() -> None:
    provider = OpenAICompatibleProvider(
        base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", timeout=2
    )
    with pytest.raises(ProviderUnavailable, match="unreachable"):
        provider.complete(request("hi"))


def test_retry_after_accepts_an_http_date() -> None:
    headers = HttpHeaders()
    headers["Retry-After"] = "Wed, 21 Oct 2015 07:28:30 GMT"
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert retry_after_seconds(headers, now=now) == 30.0
    headers.replace_header("Retry-After", "soon")
    assert retry_after_seconds(headers) is None


def test_make_provider_follows_the_settings() -> None:
    assert isinstance(make_provider(AgentSettings.from_env({})), LocalProvider)
    settings = AgentSettings.from_env(
        {"AGENT_PROVIDER": "openai", "AGENT_BASE_URL": "http://llm:8000/v1", "AGENT_MODEL": "m"}
    )
    provider = make_provider(settings)
    assert isinstance(provider, OpenAICompatibleProvider)
    assert provider.url == "http://llm:8000/v1/chat/completions"


# -- the activity: provider errors become Temporal retry decisions --------------------------


async def test_call_model_turns_a_429_into_next_retry_delay(
    fake_openai: FakeOpenAI, any_database: Database
) -> None:
    activities = AgentActivities(fake_openai.provider(), Toolbox(Outbox(any_database)))
    fake_openai.respond(429, {"error": {"message": "slow down"}}, **{"Retry-After": "7"})
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(activities.call_model, request("hi"))
    assert info.value.type == "RateLimited" and not info.value.non_retryable
    assert info.value.next_retry_delay == timedelta(seconds=7)

    fake_openai.respond(401, {"error": {"message": "invalid api key"}})
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(activities.call_model, request("hi"))
    assert info.value.type == "ModelRequestRejected" and info.value.non_retryable

    fake_openai.respond(503, {"error": {"message": "overloaded"}})
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(activities.call_model, request("hi"))
    assert info.value.type == "ModelUnavailable" and not info.value.non_retryable
    assert info.value.next_retry_delay is None
    assert len(fake_openai.requests) == 3


async def test_call_model_passes_the_attempt_to_the_provider(any_database: Database) -> None:
    activities = AgentActivities(LocalProvider(), Toolbox(Outbox(any_database)))
    env = ActivityEnvironment()
    prompt = request("[simulate-429 retry-after=2] 1 + 1")
    with pytest.raises(ApplicationError) as info:
        await env.run(activities.call_model, prompt)
    assert info.value.next_retry_delay == timedelta(seconds=2)
    env.info = dataclasses.replace(env.info, attempt=2)
    reply = await env.run(activities.call_model, prompt)
    assert reply.tool_calls[0].arguments == {"expression": "1 + 1"}
