"""Stored workflow histories: each queue's ``histories`` package (``recorded/`` and
``frozen/``), which the replay tests and the replay gate replay and ``make histories`` records
anew (``recorded/`` only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from workerkit import discover_queues

# record_history(queue, scenario, handle): the fixture's signature.
RecordHistory = Callable[[str, str, WorkflowHandle[Any, Any]], Awaitable[None]]


def histories_dir(queue: str, kind: str = "recorded") -> Path:
    """A queue's folder of stored histories of ``kind`` (``recorded`` or ``frozen``), in its
    package's source (the workspace installs the services editable)."""
    package = discover_queues()[queue].histories
    assert package is not None, f"queue {queue} declares no histories package"
    return Path(str(resources.files(package))) / kind


def history_path(queue: str, scenario: str) -> Path:
    """Where the recorded history of ``scenario`` on ``queue`` lives."""
    return histories_dir(queue) / f"{scenario}.json"


def stored(queue: str) -> list[Path]:
    """Every stored history of ``queue``, recorded then frozen."""
    return [
        *sorted(histories_dir(queue).glob("*.json")),
        *sorted(histories_dir(queue, "frozen").glob("*.json")),
    ]
