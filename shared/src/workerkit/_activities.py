"""A service's activities, collected from the instance that binds them to their resources."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from temporalio import activity
from workerkit._exceptions import ConfigurationError

__all__ = ["activities_of"]


def activities_of(instance: object) -> list[Callable[..., Any]]:
    """Return every method of ``instance`` declared with ``@activity.defn``, bound to it.

    They come in declaration order, a base class's before its subclass's; a method a
    subclass overrides keeps its base's place (and is an activity only if the override is
    declared with ``@activity.defn`` too).

    Raises:
        ConfigurationError: ``instance`` is a class, or it has no activity methods.
    """
    if isinstance(instance, type):
        raise ConfigurationError(
            f"activities_of({instance.__name__}): pass an instance, whose methods are bound"
        )
    names: dict[str, None] = {}
    for cls in reversed(type(instance).__mro__):
        names.update((name, None) for name, value in vars(cls).items() if inspect.isfunction(value))
    methods = [getattr(instance, name) for name in names]
    found = [m for m in methods if activity._Definition.from_callable(m) is not None]
    if not found:
        raise ConfigurationError(
            f"{type(instance).__name__} has no methods declared with @activity.defn"
        )
    return found
