"""Model providers: what the ``call_model`` activity asks for the next step of a conversation.

A provider makes exactly one attempt per call. Retrying is Temporal's job (the activity's
retry policy), so a provider never retries, sleeps or backs off itself; it reports what
happened as a typed :class:`ProviderError`, and the activity maps that to an
``ApplicationError``: :class:`RateLimited` carries the server's ``Retry-After``, which becomes
the retry's ``next_retry_delay``; :class:`ProviderRejected` (a 4xx: bad request, bad key,
unknown model) is non-retryable; everything else is retried by the policy.

- :class:`LocalProvider` (the default): a deterministic rule-based planner, no network and no
  weights, so the whole agent runs and is tested anywhere.
- :class:`OpenAICompatibleProvider`: ``POST {base_url}/chat/completions`` with function tools,
  for OpenAI or any compatible server (vLLM, Ollama, LiteLLM, ...), with ``urllib.request``.
"""

from __future__ import annotations

import email.utils
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.message import Message as HttpHeaders
from typing import Any, Protocol

from agent.models import Message, ModelReply, ModelRequest, Role, ToolCall, ToolSpec
from agent.settings import AgentSettings
from agent.tools import HANDBOOK


class ProviderError(Exception):
    """A model call failed; ``error_type`` names it in Temporal, ``retryable`` says if a retry
    can help."""

    error_type = "ModelError"
    retryable = True


class RateLimited(ProviderError):
    """HTTP 429: retry, but not before ``retry_after`` seconds (``None``: the policy decides)."""

    error_type = "RateLimited"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """The endpoint could not be reached, timed out, or answered 5xx/408/409: retry."""

    error_type = "ModelUnavailable"


class BadModelResponse(ProviderError):
    """The endpoint answered 200 with something that is not a usable completion: retry."""

    error_type = "BadModelResponse"


class ProviderRejected(ProviderError):
    """The endpoint refused the request (4xx): the same request will be refused again."""

    error_type = "ModelRequestRejected"
    retryable = False


class Provider(Protocol):
    """Produces the model's next reply for a conversation, in one attempt."""

    name: str

    def complete(self, request: ModelRequest, *, attempt: int = 1) -> ModelReply:
        """Return the reply to ``request.messages`` using at most ``request.tools``.

        Args:
            request: The conversation so far and the tools the model may call.
            attempt: The activity attempt (1 on the first try), for logging and simulation.

        Raises:
            ProviderError: The call failed; the subclass says whether to retry and when.
        """
        ...


def make_provider(settings: AgentSettings) -> Provider:
    """The provider that ``settings`` select."""
    if settings.provider == "openai":
        return OpenAICompatibleProvider(
            base_url=settings.base_url,
            model=settings.model,
            api_key=settings.api_key,
            timeout=settings.request_timeout.total_seconds(),
        )
    return LocalProvider()


# -- the local, deterministic provider ----------------------------------------------------------

# "[simulate-429 retry-after=2]" in the prompt: the first model call of the task raises
# RateLimited(retry_after=2) on its first `times` attempts (default 1).
SIMULATE_429 = re.compile(
    r"\[simulate-429(?:\s+retry-after=(\d+(?:\.\d+)?))?(?:\s+times=(\d+))?\]", re.IGNORECASE
)
_MARKERS = re.compile(r"\[simulate-[^\]]*\]", re.IGNORECASE)
_EXPRESSION = re.compile(r"[\d.(][\d\s.+\-*/%^()\u00d7\u00f7]*[\d)]")
_HAS_OPERATOR = re.compile(r"[\d)]\s*(?:\*\*|//|[-+*/%^\u00d7\u00f7])\s*[-+]?[\d(.]")
_REFUND = re.compile(r"\brefund\b(?!\s+polic)", re.IGNORECASE)
_ORDER = re.compile(
    r"\border\s+(?:id\s+|number\s+|no\.?\s+)?#?([A-Za-z0-9][A-Za-z0-9_-]{0,63})", re.IGNORECASE
)
_AMOUNT = re.compile(
    r"[$€£]\s?(\d+(?:\.\d{1,2})?)"
    r"|(\d+(?:\.\d{1,2})?)\s?(?:usd|eur|gbp|dollars?|euros?)\b"
    r"|(\d+)\s?cents?\b",
    re.IGNORECASE,
)
_REASON = re.compile(r"\b(?:because|reason:?)\s+([^.!?\n]+)", re.IGNORECASE)
_TOPICS = {
    "refund_policy": re.compile(r"\brefund polic|\breturn polic|\bhow (?:do )?refunds", re.I),
    "shipping_time": re.compile(r"\bshipping\b|\bdelivery\b", re.I),
    "support_hours": re.compile(r"\bsupport hours\b|\bopening hours\b", re.I),
    "return_address": re.compile(r"\breturn address\b|\bwhere (?:do|can) i (?:send|return)", re.I),
}


@dataclass(frozen=True)
class _Step:
    position: int
    call: ToolCall


def _balanced(text: str) -> str | None:
    while text.count("(") > text.count(")") and text.startswith("("):
        text = text[1:].lstrip()
    while text.count(")") > text.count("(") and text.endswith(")"):
        text = text[:-1].rstrip()
    return text if text.count("(") == text.count(")") else None


def _refund_step(prompt: str) -> ToolCall | None:
    order = _ORDER.search(prompt)
    amount = _AMOUNT.search(prompt)
    if order is None or amount is None:
        return None
    if amount.group(3) is not None:
        cents = int(amount.group(3))
    else:
        cents = int(Decimal(amount.group(1) or amount.group(2)) * 100)
    reason = _REASON.search(prompt)
    return ToolCall(
        "issue_refund",
        {
            "order_id": order.group(1),
            "amount_cents": cents,
            "reason": reason.group(1).strip() if reason else "requested by the customer",
        },
    )


def plan(prompt: str, tools: dict[str, ToolSpec]) -> tuple[list[ToolCall], list[str]]:
    """The tool calls that answer ``prompt`` in order, and what it asks that cannot be done."""
    text = _MARKERS.sub(" ", prompt)
    steps: list[_Step] = []
    notes: list[str] = []
    expressions = []
    for match in _EXPRESSION.finditer(text):
        expression = _balanced(match.group().strip())
        if expression and _HAS_OPERATOR.search(expression):
            expressions.append(
                _Step(match.start(), ToolCall("calculator", {"expression": expression}))
            )
    if expressions and "calculator" not in tools:
        notes.append("I cannot calculate here: the calculator tool is not available to this task.")
    elif expressions:
        steps.extend(expressions)
    for topic, pattern in _TOPICS.items():
        found = pattern.search(text)
        if found and "lookup" in tools:
            steps.append(_Step(found.start(), ToolCall("lookup", {"topic": topic})))
    refund = _REFUND.search(text)
    if refund and "issue_refund" not in tools:
        notes.append("I cannot issue refunds here: the issue_refund tool is not available.")
    elif refund:
        call = _refund_step(text)
        if call is None:
            notes.append(
                "To issue a refund I need an order id and an amount, "
                "e.g. 'refund $12.50 for order A-1001'."
            )
        else:
            steps.append(_Step(refund.start(), call))
    steps.sort(key=lambda s: s.position)
    return [s.call for s in steps], notes


def _money(cents: Any) -> str:
    return f"${int(cents) / 100:.2f}" if isinstance(cents, int) else str(cents)


def _sentence(call: ToolCall, result: str) -> str:
    args = call.arguments
    if call.name == "calculator":
        if result.startswith(("error:", "not run:")):
            return (
                f"I could not evaluate {args.get('expression')}: {result.split(':', 1)[1].strip()}."
            )
        return f"{args.get('expression')} = {result}."
    if call.name == "lookup" and not result.startswith(("error:", "not run:")):
        topic = str(args.get("topic", "")).replace("_", " ")
        return f"{topic[:1].upper()}{topic[1:]}: {result}"
    if call.name == "issue_refund":
        what = f"The refund of {_money(args.get('amount_cents'))} for order {args.get('order_id')}"
        try:
            issued = json.loads(result)
        except ValueError:
            issued = None
        if isinstance(issued, dict) and issued.get("status") == "issued":
            return f"{what} has been issued as {issued.get('refund_id')}."
        return f"{what} was not issued ({result})."
    return f"{call.name}: {result}"


def summarise(messages: list[Message], notes: list[str]) -> str:
    """The final answer: one sentence per tool call and its result, then the notes."""
    results = {m.tool_call_id: m.content for m in messages if m.role == Role.TOOL}
    calls = [c for m in messages if m.role == Role.ASSISTANT for c in m.tool_calls]
    sentences = [_sentence(c, results.get(c.id, "no result")) for c in calls] + notes
    if not sentences:
        return (
            "I can evaluate arithmetic, look up the handbook ("
            + ", ".join(t.replace("_", " ") for t in HANDBOOK)
            + ") and issue refunds with a human's approval; your request asks for none of these."
        )
    return " ".join(sentences)


class LocalProvider:
    """A deterministic, rule-based stand-in for a model.

    It plans from the latest user message: each arithmetic expression becomes a
    ``calculator`` call, a handbook topic a ``lookup``, "refund $X for order Y" an
    ``issue_refund`` (in the order they appear, using only the offered tools), one call per
    reply; when every planned call has a result it answers with a summary of the results.
    """

    name = "local"
    model = "local-planner"

    def complete(self, request: ModelRequest, *, attempt: int = 1) -> ModelReply:
        users = [m for m in request.messages if m.role == Role.USER]
        prompt = users[-1].content if users else ""
        first_turn = not any(m.role == Role.ASSISTANT for m in request.messages)
        simulate = SIMULATE_429.search(prompt)
        if simulate and first_turn and attempt <= int(simulate.group(2) or 1):
            retry_after = float(simulate.group(1)) if simulate.group(1) else None
            raise RateLimited(f"simulated rate limit (attempt {attempt})", retry_after=retry_after)
        calls, notes = plan(prompt, {t.name: t for t in request.tools})
        done = sum(len(m.tool_calls) for m in request.messages if m.role == Role.ASSISTANT)
        if done < len(calls):
            step = calls[done]
            return ModelReply(
                tool_calls=[ToolCall(step.name, step.arguments, id=f"local-{done + 1}")],
                model=self.model,
            )
        return ModelReply(content=summarise(request.messages, notes), model=self.model)


# -- OpenAI-compatible HTTP provider -----------------------------------------------------------


def _wire_message(message: Message) -> dict[str, Any]:
    if message.role == Role.TOOL:
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    wire: dict[str, Any] = {"role": str(message.role), "content": message.content}
    if message.tool_calls:
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in message.tool_calls
        ]
    return wire


def _wire_tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.parameters,
        },
    }


def retry_after_seconds(headers: HttpHeaders, now: datetime | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _error_detail(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        payload = json.loads(text)
        message = payload["error"]["message"]
        if isinstance(message, str):
            return message[:300]
    except (ValueError, KeyError, TypeError):
        pass
    return text[:300]


def _tool_call(raw: Any) -> ToolCall:
    try:
        function = raw["function"]
        name = function["name"]
        arguments = function.get("arguments") or {}
        if isinstance(arguments, str):
            arguments = json.loads(arguments) if arguments.strip() else {}
    except (KeyError, TypeError, ValueError) as err:
        raise BadModelResponse(f"malformed tool call {str(raw)[:200]}: {err}") from None
    if not isinstance(name, str) or not isinstance(arguments, dict):
        raise BadModelResponse(f"malformed tool call {str(raw)[:200]}")
    return ToolCall(name, arguments, id=str(raw.get("id") or ""))


class OpenAICompatibleProvider:
    """``POST {base_url}/chat/completions``: one request per call, never a retry.

    ``urllib.request`` has no retry logic of its own (unlike the OpenAI SDK's default of 2
    retries), so each activity attempt is exactly one HTTP request and Temporal's retry
    policy, visible in the workflow's history, is the only retry there is.
    """

    name = "openai"

    def __init__(
        self, *, base_url: str, model: str, api_key: str | None = None, timeout: float = 60.0
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._api_key = api_key
        self.timeout = timeout

    def _body(self, request: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [_wire_message(m) for m in request.messages],
        }
        if request.tools:
            body["tools"] = [_wire_tool(t) for t in request.tools]
        return body

    def complete(self, request: ModelRequest, *, attempt: int = 1) -> ModelReply:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        http_request = urllib.request.Request(
            self.url, data=json.dumps(self._body(request)).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(http_request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            with err:
                raise self._http_error(err) from None
        except OSError as err:  # URLError, refused connection, timeout, reset
            raise ProviderUnavailable(f"{self.url} is unreachable: {err}") from None
        return self._reply(raw)

    def _http_error(self, err: urllib.error.HTTPError) -> ProviderError:
        detail = _error_detail(err.read())
        message = f"{self.url} answered {err.code}: {detail}"
        if err.code == 429:
            return RateLimited(message, retry_after=retry_after_seconds(err.headers))
        if err.code in (408, 409) or err.code >= 500:
            return ProviderUnavailable(message)
        return ProviderRejected(message)

    def _reply(self, raw: bytes) -> ModelReply:
        try:
            payload = json.loads(raw)
            message = payload["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise BadModelResponse(
                f"{self.url} answered 200 without a completion ({err}): {raw[:200]!r}"
            ) from None
        calls = [_tool_call(c) for c in message.get("tool_calls") or []]
        content = message.get("content") or ""
        return ModelReply(
            content=content if isinstance(content, str) else json.dumps(content),
            tool_calls=calls,
            model=str(payload.get("model") or self.model),
        )
