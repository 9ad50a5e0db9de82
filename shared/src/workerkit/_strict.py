"""Strict conversion of JSON payloads to the types workflows and activities declare.

The SDK's default JSON converter turns ``1.5`` or ``true`` into an ``int`` field's ``1``,
ignores unknown fields, accepts ``NaN`` and, when a payload does not fit at all, fails the
*workflow task*, which Temporal then retries forever. Payloads come from any client (the
``temporal`` CLI, the Web UI, a Schedule, another language's SDK), so workerkit converts
strictly and fails fast instead:

- a workflow whose start input does not fit fails at once with a non-retryable
  ``ApplicationError`` of type ``InvalidInput`` naming the field and the problem;
- an update whose argument does not fit is rejected, a query refused; an activity whose input
  does not fit fails without retry; a signal that does not fit is dropped (and logged) by the
  SDK.

The argument *count* the SDK does not let a converter see (it drops the type hints when the
count differs, and converts nothing when there is no argument): ``_arity`` checks it.

Rules: JSON ``NaN``/``Infinity`` are refused; ``bool`` is not an ``int``; an ``int`` is
accepted for a ``float``; a dataclass takes a JSON object with no unknown and no missing
required field; lists, sets, tuples, dicts, ``Optional``/unions, ``Literal`` and enums are
checked element by element. Other types go through the SDK's own ``value_to_type``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    CompositePayloadConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    value_to_type,
)
from temporalio.exceptions import ApplicationError

__all__ = ["INVALID_INPUT", "InputMismatch", "StrictPayloadConverter", "convert"]

INVALID_INPUT = "InvalidInput"


class InputMismatch(ValueError):
    """A value that does not fit its declared type; ``str()`` names the path and problem."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 20 else value[:17] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _join(path: str, part: str | int) -> str:
    return f"{path}[{part}]" if isinstance(part, int) else (f"{path}.{part}" if path else part)


def convert(value: Any, hint: Any, path: str = "") -> Any:
    """Convert a JSON-decoded ``value`` to ``hint`` strictly.

    Raises:
        InputMismatch: The value does not fit; the message names the path.
    """
    if hint is Any or hint is object:
        return value
    if hint is None or hint is type(None):
        if value is not None:
            raise InputMismatch(path, f"expected null, got {_describe(value)}")
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        problems = []
        for option in (a for a in args if a is not type(None)):
            try:
                return convert(value, option, path)
            except InputMismatch as err:
                problems.append(err.problem)
        raise InputMismatch(path, " or ".join(dict.fromkeys(problems)))
    if origin is typing.Literal:
        if value not in args or isinstance(value, bool) != any(isinstance(a, bool) for a in args):
            raise InputMismatch(path, f"expected one of {list(args)!r}, got {_describe(value)}")
        return value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            allowed = [m.value for m in hint]
            raise InputMismatch(
                path, f"expected one of {allowed!r}, got {_describe(value)}"
            ) from None
    if hint is bool:
        if not isinstance(value, bool):
            raise InputMismatch(path, f"expected true or false, got {_describe(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputMismatch(path, f"expected an integer, got {_describe(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputMismatch(path, f"expected a number, got {_describe(value)}")
        if not math.isfinite(value):
            raise InputMismatch(path, f"expected a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise InputMismatch(path, f"expected a string, got {_describe(value)}")
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _dataclass(value, hint, path)
    container = origin or hint
    if container in (list, set, frozenset, Sequence, tuple) or (
        isinstance(container, type) and issubclass(container, list | set | frozenset | tuple)
    ):
        return _sequence(value, container, args, path)
    if container in (dict, Mapping) or (
        isinstance(container, type) and issubclass(container, dict)
    ):
        return _mapping(value, args, path)
    try:
        return value_to_type(hint, value)
    except (TypeError, ValueError, KeyError) as err:
        raise InputMismatch(path, f"does not fit {_name(hint)}: {err}") from None


def _sequence(value: Any, container: Any, args: tuple[Any, ...], path: str) -> Any:
    if not isinstance(value, list):
        raise InputMismatch(path, f"expected an array, got {_describe(value)}")
    if container is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise InputMismatch(path, f"expected {len(args)} items, got {len(value)}")
        return tuple(
            convert(v, a, _join(path, i)) for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    item = args[0] if args else Any
    items = [convert(v, item, _join(path, i)) for i, v in enumerate(value)]
    if container in (set, frozenset):
        return container(items)
    return tuple(items) if container is tuple else items


def _mapping(value: Any, args: tuple[Any, ...], path: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise InputMismatch(path, f"expected an object, got {_describe(value)}")
    key_type, value_type = args if len(args) == 2 else (Any, Any)
    if key_type not in (str, Any):
        return dict(value_to_type(dict[key_type, value_type], value))  # type: ignore[valid-type]
    return {k: convert(v, value_type, _join(path, str(k))) for k, v in value.items()}


def _dataclass(value: Any, cls: type, path: str) -> Any:
    if not isinstance(value, dict):
        raise InputMismatch(path, f"expected an object ({cls.__name__}), got {_describe(value)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise InputMismatch(
            path, f"unknown field {unknown[0]!r} for {cls.__name__} (fields: {', '.join(fields)})"
        )
    kwargs = {}
    for name, f in fields.items():
        if name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise InputMismatch(_join(path, name), f"missing (required by {cls.__name__})")
            continue
        kwargs[name] = convert(value[name], hints.get(name, Any), _join(path, name))
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise InputMismatch(path, f"{cls.__name__} refused it: {err}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


class StrictJSONPayloadConverter(JSONPlainPayloadConverter):
    """``json/plain`` payloads converted with :func:`convert` (encoding is unchanged)."""

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        """Decode ``payload`` and fit it to ``type_hint``, or raise ``InvalidInput``."""
        what = _name(type_hint) if type_hint is not None else "value"
        try:
            value = json.loads(payload.data, parse_constant=_reject_constant)
        except ValueError as err:
            raise ApplicationError(
                f"{what} input is not valid JSON: {err}", type=INVALID_INPUT, non_retryable=True
            ) from None
        if type_hint is None:
            return value
        try:
            return convert(value, type_hint)
        except InputMismatch as err:
            raise ApplicationError(
                f"{what} input is invalid: {err}", type=INVALID_INPUT, non_retryable=True
            ) from None


class StrictPayloadConverter(CompositePayloadConverter):
    """The SDK's default payload converters, with strict ``json/plain`` decoding."""

    def __init__(self) -> None:
        super().__init__(
            *(
                StrictJSONPayloadConverter() if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )
