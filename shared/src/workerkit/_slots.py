"""The activity slots of the worker being built, for resources its activity factory opens."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["activity_slots", "current_activity_slots"]

_activity_slots: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "workerkit_activity_slots", default=None
)


@contextmanager
def activity_slots(slots: int) -> Iterator[None]:
    """While building a worker's activities: the slots a pool opened now is sized from."""
    token = _activity_slots.set(slots)
    try:
        yield
    finally:
        _activity_slots.reset(token)


def current_activity_slots() -> int | None:
    """The slots of the worker being built, or ``None`` outside :func:`activity_slots`."""
    return _activity_slots.get()
