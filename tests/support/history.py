"""Stored workflow histories: what the replay tests replay and ``make histories`` records."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
# record_history(queue, scenario, handle): the fixture's signature.
RecordHistory = Callable[[str, str, WorkflowHandle[Any, Any]], Awaitable[None]]


def history_path(queue: str, scenario: str) -> Path:
    """Where the stored history of ``scenario`` on ``queue`` lives."""
    return HISTORIES / queue / f"{scenario}.json"
