"""Schedules: a queue declares its recurring workflows (``_schedule_sync`` makes the server match).

The Temporal server owns the timing (a server-side Schedule), so a recurring workflow
fires whether or not any worker or CLI is running at that moment. A queue declares::

    QUEUE = Queue(
        name="notifications",
        workflows=[DigestWorkflow],
        schedules=[Schedule(id="digest", workflow=DigestWorkflow, args=[DigestRequest()],
                            every=timedelta(days=1), offset=timedelta(hours=8))],
    )
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.client import ScheduleOverlapPolicy
from workerkit._exceptions import ConfigurationError

__all__ = ["Schedule"]

SCHEDULE_ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """A workflow that the Temporal server starts on a recurring spec.

    Attributes:
        id: Name of the schedule within its queue: a lower-case letter, then lower-case
            letters, digits or ``-``. The server-side schedule id is ``<queue>-<id>``
            (see :func:`schedule_id`), and so is the id of the workflows it starts
            (the server appends each run's scheduled time).
        workflow: The workflow class to start; the queue must register it.
        args: Arguments of the workflow's run method.
        cron: A cron expression (five fields, e.g. ``"0 8 * * *"``), in UTC unless
            ``time_zone`` is set.
        every: Start every ``every`` (measured from the Unix epoch, plus ``offset``).
        offset: Phase of ``every``: ``every=1d, offset=8h`` fires daily at 08:00 UTC.
        time_zone: IANA time zone of ``cron``, e.g. ``"Europe/Paris"``.
        overlap: What happens when a run is due while the previous one still runs
            (default: skip it).
        execution_timeout: Bound on each run, so a stuck run cannot block the ones after.
        paused: Create the schedule paused.
        note: The state note the schedule is created with (shown by the UI and
            ``fleet schedules list``).
    """

    id: str
    workflow: type
    args: Sequence[Any] = ()
    cron: str | None = None
    every: timedelta | None = None
    offset: timedelta | None = None
    time_zone: str | None = None
    overlap: ScheduleOverlapPolicy = ScheduleOverlapPolicy.SKIP
    execution_timeout: timedelta | None = None
    paused: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        if not SCHEDULE_ID_PATTERN.match(self.id):
            raise ConfigurationError(
                f"schedule id {self.id!r} must be a lower-case letter followed by up to 62 "
                "lower-case letters, digits or '-'"
            )
        if workflow._Definition.from_class(self.workflow) is None:
            raise ConfigurationError(
                f"schedule {self.id!r}: {self.workflow!r} is not a @workflow.defn class"
            )
        if self.cron is None and self.every is None:
            raise ConfigurationError(f"schedule {self.id!r}: set cron, every, or both")
        if self.cron is not None and not self.cron.strip():
            raise ConfigurationError(f"schedule {self.id!r}: cron is empty")
        if self.every is not None and self.every <= timedelta(0):
            raise ConfigurationError(f"schedule {self.id!r}: every must be positive")
        if self.offset is not None and (
            self.every is None or not timedelta(0) <= self.offset < self.every
        ):
            raise ConfigurationError(
                f"schedule {self.id!r}: offset needs every, and must be >= 0 and < every"
            )

    @property
    def workflow_type(self) -> str:
        """The workflow type name the schedule starts."""
        name = workflow._Definition.must_from_class(self.workflow).name
        if name is None:
            raise ConfigurationError(f"schedule {self.id!r}: a dynamic workflow can't be started")
        return name

    def describe_spec(self) -> str:
        """One line for people: ``cron 0 8 * * *`` or ``every 1d +8h``."""
        parts = []
        if self.cron is not None:
            zone = f" ({self.time_zone})" if self.time_zone else ""
            parts.append(f"cron {self.cron}{zone}")
        if self.every is not None:
            offset = f" +{_duration_text(self.offset)}" if self.offset else ""
            parts.append(f"every {_duration_text(self.every)}{offset}")
        return ", ".join(parts)


def _duration_text(value: timedelta) -> str:
    total = value.total_seconds()
    if total != int(total):
        return f"{total:g}s"
    rest, text = int(total), ""
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, seconds)
        if count:
            text += f"{count}{unit}"
    return text or "0s"
