"""The agent's tools: deterministic, local, and safe with arguments a model made up.

``TOOL_SPECS`` is pure data (the workflow reads it to offer tools to the model and to decide
which calls need a human's approval); :class:`Toolbox` runs the calls, inside the
``run_tool`` activity. Arguments come from a model, so every tool checks them and raises
:class:`ToolError` with a message the model can act on; the activity returns that message
as the tool's result instead of failing.
"""

from __future__ import annotations

import ast
import json
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from workerkit import Database, derived_id

from agent.models import ToolCall, ToolSpec

MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 64
MAX_MAGNITUDE = 1e100
MAX_REFUND_CENTS = 1_000_000  # 10 000.00: above that a refund is not a chat-agent's job

# The bundled handbook the ``lookup`` tool answers from.
HANDBOOK: dict[str, str] = {
    "refund_policy": (
        "Refunds are possible within 30 days of delivery and go back to the original payment "
        "method; every refund needs a human's approval."
    ),
    "shipping_time": (
        "Orders ship within 2 business days; delivery takes 3-5 business days in the EU and "
        "5-10 elsewhere."
    ),
    "support_hours": "Support answers Monday to Friday, 09:00-18:00 CET.",
    "return_address": "Returns go to Fleet Goods, 12 Harbour Road, 1011 AB Amsterdam, NL.",
}

CALCULATOR = ToolSpec(
    name="calculator",
    description=(
        "Evaluate an arithmetic expression exactly: numbers, + - * / // % ** (or ^) and "
        "parentheses. Use it for every calculation."
    ),
    parameters={
        "type": "object",
        "properties": {"expression": {"type": "string", "description": "e.g. 12 * (3 + 4) - 5"}},
        "required": ["expression"],
        "additionalProperties": False,
    },
)
LOOKUP = ToolSpec(
    name="lookup",
    description="Look up a topic in the company handbook.",
    parameters={
        "type": "object",
        "properties": {"topic": {"type": "string", "enum": sorted(HANDBOOK)}},
        "required": ["topic"],
        "additionalProperties": False,
    },
)
ISSUE_REFUND = ToolSpec(
    name="issue_refund",
    description=(
        "Refund a customer's order. A human must approve every call; if the result says the "
        "refund was not run, it was not issued."
    ),
    parameters={
        "type": "object",
        "properties": {
            "order_id": {"type": "string"},
            "amount_cents": {"type": "integer", "minimum": 1, "maximum": MAX_REFUND_CENTS},
            "reason": {"type": "string"},
        },
        "required": ["order_id", "amount_cents", "reason"],
        "additionalProperties": False,
    },
    requires_approval=True,
)
TOOL_SPECS: dict[str, ToolSpec] = {t.name: t for t in (CALCULATOR, LOOKUP, ISSUE_REFUND)}


class ToolError(Exception):
    """The call's arguments cannot work; the message goes back to the model."""


# -- calculator ------------------------------------------------------------------------------

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _eval(node: ast.AST) -> int | float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ToolError(f"{node.value!r} is not a number")
        return _checked(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _checked(_UNARY[type(node.op)](_eval(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolError(f"exponent {right:g} is too large (at most {MAX_EXPONENT})")
        try:
            value = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ToolError("division by zero") from None
        except OverflowError:
            raise ToolError("the result is too large") from None
        if isinstance(value, complex):
            raise ToolError("the result is not a real number")
        return _checked(value)
    raise ToolError("only numbers, + - * / // % ** ^ and parentheses are allowed")


def _checked(value: int | float) -> int | float:
    if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > MAX_MAGNITUDE:
        raise ToolError("the result is too large")
    return value


def evaluate(expression: str) -> int | float:
    """Evaluate an arithmetic expression without ``eval``: the AST is walked, not executed.

    Raises:
        ToolError: The expression is too long, malformed, or uses anything but numbers,
            arithmetic operators and parentheses; or its value is not a finite real number.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    text = expression.replace("^", "**").replace("\u00d7", "*").replace("\u00f7", "/")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ToolError(f"{expression!r} is not an arithmetic expression") from None
    return _eval(tree)


def format_number(value: int | float) -> str:
    """``84``, ``12.5``, ``0.333333333333``: integers without ``.0``, 12 significant digits."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return format(value, ".12g")
    return str(value)


# -- the outbox of sensitive actions -----------------------------------------------------------


@dataclass(frozen=True)
class Refund:
    refund_id: str
    task_id: str
    order_id: str
    amount_cents: int
    reason: str


class Outbox:
    """The outbox of refunds in ``db``, idempotent by key: a retried call never refunds twice."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def issue_refund(
        self, key: str, *, task_id: str, order_id: str, amount_cents: int, reason: str
    ) -> Refund:
        """Record the refund once per ``key``; a repeat returns the first one unchanged."""
        refund_id = derived_id("rf", key)
        with self.db.transaction() as db:
            db.execute(
                text(
                    "INSERT INTO agent_refunds (key, refund_id, task_id, order_id, amount_cents, "
                    "reason) VALUES (:key, :refund_id, :task_id, :order_id, :amount, :reason) "
                    "ON CONFLICT (key) DO NOTHING"
                ),
                {
                    "key": key,
                    "refund_id": refund_id,
                    "task_id": task_id,
                    "order_id": order_id,
                    "amount": amount_cents,
                    "reason": reason,
                },
            )
            row = db.execute(
                text(f"SELECT {_REFUND_COLUMNS} FROM agent_refunds WHERE key = :key"),
                {"key": key},
            ).one()
        return _refund(row)

    def refunds(self, task_id: str) -> list[Refund]:
        """The refunds that ``task_id`` issued, in the order they were issued."""
        with self.db.transaction() as db:
            rows = db.execute(
                text(
                    f"SELECT {_REFUND_COLUMNS} FROM agent_refunds WHERE task_id = :t ORDER BY seq"
                ),
                {"t": task_id},
            ).all()
        return [_refund(r) for r in rows]


_REFUND_COLUMNS = "refund_id, task_id, order_id, amount_cents, reason"


def _refund(row: Any) -> Refund:
    return Refund(str(row[0]), str(row[1]), str(row[2]), int(row[3]), str(row[4]))


# -- running a call ----------------------------------------------------------------------------


def _string(args: dict[str, Any], name: str, *, max_chars: int = 200) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ToolError(f"argument {name!r} must be a non-empty string")
    if len(value) > max_chars:
        raise ToolError(f"argument {name!r} is longer than {max_chars} characters")
    return value.strip()


def _unexpected(args: dict[str, Any], spec: ToolSpec) -> None:
    extra = sorted(set(args) - set(spec.parameters["properties"]))
    if extra:
        raise ToolError(f"unexpected arguments {extra} for {spec.name}")


class Toolbox:
    """Runs tool calls; the sensitive ones write to ``outbox``."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def run(self, task_id: str, call: ToolCall) -> str:
        """Run ``call`` for ``task_id`` and return its result as text for the model.

        Raises:
            ToolError: The tool does not exist or the arguments are not acceptable.
        """
        spec = TOOL_SPECS.get(call.name)
        if spec is None:
            raise ToolError(f"unknown tool {call.name!r}; tools: {', '.join(TOOL_SPECS)}")
        _unexpected(call.arguments, spec)
        if call.name == "calculator":
            return format_number(evaluate(_string(call.arguments, "expression")))
        if call.name == "lookup":
            topic = _string(call.arguments, "topic")
            if topic not in HANDBOOK:
                raise ToolError(f"no handbook topic {topic!r}; topics: {', '.join(HANDBOOK)}")
            return HANDBOOK[topic]
        return self._issue_refund(task_id, call)

    def _issue_refund(self, task_id: str, call: ToolCall) -> str:
        order_id = _string(call.arguments, "order_id", max_chars=64)
        reason = _string(call.arguments, "reason", max_chars=500)
        amount = call.arguments.get("amount_cents")
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ToolError("argument 'amount_cents' must be an integer number of cents")
        if not 1 <= amount <= MAX_REFUND_CENTS:
            raise ToolError(f"amount_cents must be from 1 to {MAX_REFUND_CENTS}, got {amount}")
        refund = self.outbox.issue_refund(
            f"{task_id}/{call.id}",
            task_id=task_id,
            order_id=order_id,
            amount_cents=amount,
            reason=reason,
        )
        return json.dumps(
            {
                "status": "issued",
                "refund_id": refund.refund_id,
                "order_id": refund.order_id,
                "amount_cents": refund.amount_cents,
            },
            sort_keys=True,
        )
