"""Errors the library raises; each carries a one-line message meant for an operator."""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ConnectError",
    "LaunchError",
    "SettingError",
    "UnknownQueueError",
    "UnknownWorkflowError",
    "WorkerkitError",
]


class WorkerkitError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigurationError(WorkerkitError):
    """The process is configured wrongly; the CLI exits with code 2."""


class SettingError(ConfigurationError):
    """An environment variable holds a value that is not accepted."""

    def __init__(self, variable: str, value: str, accepted: str) -> None:
        self.variable = variable
        self.value = value
        self.accepted = accepted
        super().__init__(f"{variable}={value!r} is invalid: expected {accepted}")


class UnknownQueueError(ConfigurationError):
    """A queue name that no installed service declares."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        listing = ", ".join(known) if known else "none are installed"
        super().__init__(f"unknown queue {name!r}; known queues: {listing}")


class UnknownWorkflowError(ConfigurationError):
    """A workflow type that the queue does not register."""

    def __init__(self, queue: str, workflow_type: str, known: list[str]) -> None:
        self.queue = queue
        self.workflow_type = workflow_type
        self.known = known
        super().__init__(
            f"queue {queue!r} has no workflow {workflow_type!r}; "
            f"known workflows: {', '.join(known) or 'none'}"
        )


class ConnectError(WorkerkitError):
    """The Temporal server could not be reached before the deadline."""


class LaunchError(WorkerkitError):
    """A workflow could not be started for a reason other than already running."""
