"""Settings declared as frozen dataclasses and read from prefixed environment variables.

The ``WORKER_*`` settings and every service's own (``ORDERS_*``, ...) are read by the one
parser here: a variable that is unset or blank leaves its field at the default, and one
that holds a value the field does not accept is a :class:`SettingError` naming it, which
stops a worker with exit code 2.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any, ClassVar, Generic, Self, TypeVar, dataclass_transform

from workerkit._exceptions import SettingError

__all__ = ["Accepts", "EnvSettings", "parse_duration", "setting"]

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)
_S = TypeVar("_S", bound=str)
_PREFIX = re.compile(r"^[A-Z][A-Z0-9]*_$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_duration(text: str) -> timedelta:
    """Parse ``"30s"``, ``"1.5m"``, ``"2h"``, ``"7d"``, ``"250ms"`` or plain seconds.

    Raises:
        ValueError: The text is not a non-negative number with an optional unit.
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    number, unit = match.groups()
    try:
        return timedelta(seconds=float(number) * _UNIT_SECONDS[unit or "s"])
    except OverflowError:
        raise ValueError(f"duration too large: {text!r}") from None


def _bounds(lo: str | None, hi: str | None, *, above: bool = False) -> str:
    if lo is not None and hi is not None:
        return f"above {lo} and at most {hi}" if above else f"from {lo} to {hi}"
    if lo is not None:
        return f"above {lo}" if above else f">= {lo}"
    return f"<= {hi}" if hi is not None else ""


def _seconds(value: timedelta) -> str:
    return f"{value.total_seconds():g}s" if value else "0"


@dataclass(frozen=True)
class Accepts(Generic[_T_co]):
    """What a setting accepts: the words its error shows, and the parser that checks them.

    Attributes:
        what: The accepted values, as the error says them (``expected <what>``).
        parse: Turns the variable's text into the field's value; raises ``ValueError``
            to refuse it.
    """

    what: str
    parse: Callable[[str], _T_co]

    @staticmethod
    def integer(min: int | None = None, max: int | None = None) -> Accepts[int]:
        """An integer, e.g. ``Accepts.integer(min=0)``: "an integer >= 0"."""

        def parse(raw: str) -> int:
            value = int(raw.strip())
            if (min is not None and value < min) or (max is not None and value > max):
                raise ValueError(raw)
            return value

        lo, hi = (None if b is None else str(b) for b in (min, max))
        return Accepts(f"an integer {_bounds(lo, hi)}".rstrip(), parse)

    @staticmethod
    def number(min: float | None = None, max: float | None = None) -> Accepts[float]:
        """A finite number, e.g. ``Accepts.number(min=0, max=1)``: "a number from 0 to 1"."""

        def parse(raw: str) -> float:
            value = float(raw.strip())
            if not math.isfinite(value):
                raise ValueError(raw)
            if (min is not None and value < min) or (max is not None and value > max):
                raise ValueError(raw)
            return value

        lo, hi = (None if b is None else f"{b:g}" for b in (min, max))
        return Accepts(f"a number {_bounds(lo, hi)}".rstrip(), parse)

    @staticmethod
    def duration(
        above: timedelta | None = None, at_most: timedelta | None = None, *, what: str = ""
    ) -> Accepts[timedelta]:
        """A duration such as ``30s``, ``2m``, ``1h`` (see :func:`parse_duration`).

        Args:
            above: The value must be longer than this.
            at_most: The value must not be longer than this.
            what: The words the error shows, instead of the ones made from the bounds.
        """

        def parse(raw: str) -> timedelta:
            value = parse_duration(raw)
            if (above is not None and value <= above) or (at_most is not None and value > at_most):
                raise ValueError(raw)
            return value

        if not what and above is None and at_most is None:
            what = "a duration such as 30s, 2m, 1h (plain numbers are seconds)"
        lo, hi = (None if b is None else _seconds(b) for b in (above, at_most))
        return Accepts(what or f"a duration {_bounds(lo, hi, above=True)}", parse)

    @staticmethod
    def choice(*options: _S) -> Accepts[_S]:
        """One of ``options``, in any case: "one of json, text"."""

        def parse(raw: str) -> _S:
            value = raw.strip().lower()
            for option in options:
                if option == value:
                    return option
            raise ValueError(raw)

        return Accepts("one of " + ", ".join(options), parse)

    @staticmethod
    def boolean() -> Accepts[bool]:
        """``1``, ``true``, ``yes``, ``on`` or ``0``, ``false``, ``no``, ``off``, in any case."""

        def parse(raw: str) -> bool:
            value = raw.strip().lower()
            if value in _TRUE:
                return True
            if value in _FALSE:
                return False
            raise ValueError(raw)

        return Accepts("true or false", parse)


def setting(accepts: Accepts[_T], *, default: _T, doc: str = "", repr: bool = True) -> _T:
    """Declare one field of an :class:`EnvSettings` class.

    Args:
        accepts: What its variable may hold, and how it is parsed.
        default: The value when the variable is unset or blank.
        doc: One line for listings such as ``fleet settings``.
        repr: ``False`` keeps the value (a key, a token) out of the settings' repr.
    """
    declared: _T = field(default=default, repr=repr, metadata={"accepts": accepts, "doc": doc})
    return declared


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(setting,))
class EnvSettings:
    """A frozen dataclass whose fields are read from ``<prefix><FIELD NAME>`` variables.

    Declare the prefix and each field's :func:`setting`; the class becomes a frozen,
    keyword-only dataclass::

        class OrdersSettings(EnvSettings, prefix="ORDERS_"):
            fraud_limit_cents: int = setting(Accepts.integer(min=0), default=1_000_000)

    Checks across fields go in ``__post_init__`` and raise :class:`SettingError` naming the
    variable (:meth:`variable`).
    """

    env_prefix: ClassVar[str]

    def __init_subclass__(cls, *, prefix: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not _PREFIX.match(prefix):
            raise TypeError(f"{cls.__name__}: prefix {prefix!r} must be like 'ORDERS_'")
        cls.env_prefix = prefix
        dataclass(frozen=True, kw_only=True)(cls)
        plain = [f.name for f in fields(cls) if "accepts" not in f.metadata]  # type: ignore[arg-type]
        if plain:
            raise TypeError(f"{cls.__name__}: declare {', '.join(plain)} with setting()")

    @classmethod
    def variable(cls, name: str) -> str:
        """The environment variable of the field ``name``."""
        return cls.env_prefix + name.upper()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read the settings from ``environ`` (default: the process environment).

        Raises:
            SettingError: A variable holds a value its field does not accept.
        """
        return cls(**cls._read(environ))

    @classmethod
    def _read(cls, environ: Mapping[str, str] | None) -> dict[str, Any]:
        """Parse the fields whose variables are set (and not blank) in ``environ``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            name = cls.variable(f.name)
            raw = env.get(name)
            if raw is None or not raw.strip():
                continue
            accepts: Accepts[Any] = f.metadata["accepts"]
            try:
                values[f.name] = accepts.parse(raw)
            except ValueError:
                raise SettingError(name, raw, accepts.what) from None
        return values

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """Return ``(variable, accepted values, description)`` for every setting."""
        return [
            (cls.variable(f.name), f.metadata["accepts"].what, f.metadata["doc"])
            for f in fields(cls)  # type: ignore[arg-type]
        ]
