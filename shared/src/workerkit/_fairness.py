"""Fair sharing: which tenant a task belongs to, its priority, and the queue's server limits.

A queue shared by many tenants declares how its work is shared::

    QUEUE = Queue(
        name="orders",
        ...,
        fairness=Fairness(key="customer_id", weights={"cust-4711": 3.0}),
        rate_limits=RateLimits(activity_tasks=200.0),
    )

The fairness key is read from each workflow's input (the ``customer_id`` field of an
``Order``) by every start the fleet makes (:func:`~workerkit.launch`, schedules, child
workflows), so no caller computes it by hand. The server then dispatches the queue's
backlog round-robin between keys (weighted), instead of first in, first out: one customer's
5,000 orders no longer hold every other customer's order behind them. Activities inherit
their workflow's key. ``rate_limits`` and ``weights`` are the task queue's server-side
configuration, which ``fleet limits apply`` sets (and the deploy runs).

The server dispatches by fairness key only with its dynamic config
``matching.enableFairness`` true; without it the keys are carried and ignored (first in,
first out), which is safe. No server API reports that setting, so ``fleet limits apply``
says which setting it relies on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from temporalio.common import Priority
from workerkit._exceptions import ConfigurationError

__all__ = [
    "FAIRNESS_KEY_MAX_BYTES",
    "FAIRNESS_SETTING",
    "PRIORITY_LEVELS",
    "WEIGHT_RANGE",
    "Fairness",
    "RateLimits",
    "check_number",
    "check_weight",
    "fairness_key_value",
    "field_problem",
]

# The server refuses a fairness key longer than this (common/priorities in the server).
FAIRNESS_KEY_MAX_BYTES = 64
# The server's default number of priority levels (matching.priorityLevels): 1 runs first.
PRIORITY_LEVELS = 5
# The weights the server accepts for a fairness key (the temporal CLI's --fairness-weight).
WEIGHT_RANGE = (0.001, 1000.0)
# The server's dynamic config that turns dispatch by fairness key on.
FAIRNESS_SETTING = "matching.enableFairness"


def check_number(what: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number above zero.

    Raises:
        ConfigurationError: It is not a number, not finite, or not above zero; the message
            names ``what``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{what} must be a number above 0, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigurationError(f"{what} must be a number above 0, not {value!r}")
    return number


def check_weight(what: str, value: object) -> float:
    """Return ``value`` as a float if it is a fairness weight the server accepts.

    Raises:
        ConfigurationError: It is not a number from 0.001 to 1000; the message names ``what``.
    """
    low, high = WEIGHT_RANGE
    number = check_number(what, value)
    if not low <= number <= high:
        raise ConfigurationError(f"{what} must be from {low:g} to {high:g}, not {value!r}")
    return number


@dataclass(frozen=True, kw_only=True)
class Fairness:
    """How a queue's backlog is shared between tenants.

    Attributes:
        key: The field of the workflow input (the run method's one argument) that names the
            tenant, e.g. ``"customer_id"``; a dotted path reaches into a nested field
            (``"account.id"``). One name for every workflow of the queue, or a mapping
            from workflow class to its field (a workflow left out gets no key). Checked
            when the queue is declared: the input type must have the field.
        priority: The priority key of the queue's workflows, 1 (first) to 5 (last); unset,
            the server's default (3). One for every workflow or a mapping per class.
        weights: Fairness weight per tenant (key value), 0.001 to 1000 (default 1): a tenant of
            weight 3 gets three times the dispatches of a tenant of weight 1 while both have
            a backlog. Applied to the task queues by ``fleet limits apply``.
    """

    key: str | Mapping[type, str] | None = None
    priority: int | Mapping[type, int] | None = None
    weights: Mapping[str, float] = field(default_factory=dict)

    def check(self, queue: str, workflows: Sequence[type], arg_types: Mapping[type, Any]) -> None:
        """Refuse a declaration that cannot work for ``workflows``.

        Raises:
            ConfigurationError: A key field the input type lacks, a priority out of range, a
                weight that is not a number above 0, or a class the queue does not register.
        """
        keys = self._per_class(self.key, workflows)
        priorities = self._per_class(self.priority, workflows)
        for cls in [*keys, *priorities]:
            if cls not in workflows:
                raise ConfigurationError(
                    f"queue {queue!r}: fairness names {cls.__name__}, which the queue does "
                    "not register"
                )
        for cls, path in keys.items():
            problem = field_problem(arg_types.get(cls), path)
            if problem is not None:
                raise ConfigurationError(
                    f"queue {queue!r}: fairness key {path!r} of {cls.__name__}: {problem}"
                )
        for cls, level in priorities.items():
            if isinstance(level, bool) or not isinstance(level, int):
                raise ConfigurationError(
                    f"queue {queue!r}: priority of {cls.__name__} must be an integer from 1 "
                    f"to {PRIORITY_LEVELS}, not {level!r}"
                )
            if not 1 <= level <= PRIORITY_LEVELS:
                raise ConfigurationError(
                    f"queue {queue!r}: priority of {cls.__name__} must be from 1 to "
                    f"{PRIORITY_LEVELS}, not {level}"
                )
        for tenant, weight in self.weights.items():
            if not isinstance(tenant, str) or not tenant:
                raise ConfigurationError(
                    f"queue {queue!r}: a fairness weight's key must be a non-empty string, "
                    f"not {tenant!r}"
                )
            if len(tenant.encode()) > FAIRNESS_KEY_MAX_BYTES:
                raise ConfigurationError(
                    f"queue {queue!r}: fairness weight key {tenant!r} is longer than "
                    f"{FAIRNESS_KEY_MAX_BYTES} bytes"
                )
            check_weight(f"queue {queue!r}: fairness weight of {tenant!r}", weight)

    def priority_for(self, cls: type, args: Sequence[Any]) -> Priority:
        """The priority of a start of workflow ``cls`` with ``args``."""
        path = self._per_class(self.key, [cls]).get(cls)
        level = self._per_class(self.priority, [cls]).get(cls)
        key = fairness_key_value(args[0], path) if path is not None and args else None
        if key is None and level is None:
            return Priority.default
        return Priority(priority_key=level, fairness_key=key)

    @staticmethod
    def _per_class(value: Any, workflows: Sequence[type]) -> dict[type, Any]:
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return dict(value)
        return dict.fromkeys(workflows, value)


@dataclass(frozen=True, kw_only=True)
class RateLimits:
    """The task queue's server-side rate limits, in activity tasks dispatched per second.

    Set on the server by ``fleet limits apply``, they bound every worker of the queue
    together, however many replicas run: the way to protect what the queue calls
    downstream (a payment provider's quota). Unset, the server sets no limit. (The server
    refuses a rate limit on workflow tasks, which call nothing downstream.)

    Attributes:
        activity_tasks: All activity tasks of the queue.
        activity_tasks_per_key: The activity tasks of each fairness key (tenant), so one
            tenant cannot use the whole of ``activity_tasks``.
    """

    activity_tasks: float | None = None
    activity_tasks_per_key: float | None = None

    def check(self, queue: str) -> None:
        """Refuse a limit that is not a number above 0.

        Raises:
            ConfigurationError: The message names the limit.
        """
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value is not None:
                check_number(f"queue {queue!r}: rate limit {item.name}", value)


def field_problem(arg_type: Any, path: str) -> str | None:
    """Why ``path`` (dotted) is not a field of ``arg_type``, or ``None`` if it is."""
    if not path or not isinstance(path, str):
        return f"must be a field name, not {path!r}"
    if arg_type is None:
        return "the workflow must take one typed argument that holds the key"
    current = arg_type
    for part in path.split("."):
        fields = _field_types(current)
        if fields is None:
            return f"{_name(current)} has no fields to read {part!r} from"
        if part not in fields:
            return f"{_name(current)} has no field {part!r} (it has {', '.join(sorted(fields))})"
        current = fields[part]
    return None


def fairness_key_value(value: Any, path: str) -> str | None:
    """The fairness key that ``path`` reads from ``value`` (the workflow input).

    A key longer than the server accepts becomes a digest of itself, so every long key still
    maps to one tenant; an absent or empty field gives no key.
    """
    current = value
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part)
        else:
            current = getattr(current, part, None)
        if current is None:
            return None
    # An enum's value, as an outside client's JSON carries it ("gold", not "Tier.GOLD").
    text = str(current.value if isinstance(current, Enum) else current)
    if not text:
        return None
    if len(text.encode()) > FAIRNESS_KEY_MAX_BYTES:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:48]
    return text


def _field_types(cls: Any) -> dict[str, Any] | None:
    cls = _without_none(cls)  # an optional nested field: its key is read when it is set
    if dataclasses.is_dataclass(cls) and isinstance(cls, type):
        try:
            hints = typing.get_type_hints(cls)
        except NameError:  # an annotation that does not resolve: the fields are still known
            hints = {}
        return {f.name: hints.get(f.name) for f in dataclasses.fields(cls)}
    model_fields = getattr(cls, "model_fields", None)  # a pydantic model
    if isinstance(model_fields, Mapping):
        return {name: getattr(info, "annotation", None) for name, info in model_fields.items()}
    if isinstance(cls, type) and typing.is_typeddict(cls):
        try:
            return dict(typing.get_type_hints(cls))
        except NameError:
            return dict(cls.__annotations__)
    return None


def _without_none(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _name(cls: Any) -> str:
    return getattr(cls, "__name__", repr(cls))
