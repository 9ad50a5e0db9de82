"""Signals the SDK drops because their payload does not fit: counted and logged once.

A signal is fire-and-forget: when its argument cannot be converted (see ``_strict``), the
SDK drops it and logs a traceback, and the sender never learns. workerkit turns that record
into one line naming the workflow, the signal and the reason, and counts it in
``workerkit_signals_dropped_total{task_queue, signal}``; a replay of the same history
(after a cache eviction) neither counts nor logs it again.
"""

from __future__ import annotations

import logging
import re

from temporalio import workflow
from workerkit._metrics import SIGNALS_DROPPED

__all__ = ["install_dropped_signal_handling"]

# The SDK's message (temporalio.worker._workflow_instance, _process_signal_job).
_DROPPED = re.compile(r"^Failed deserializing signal input for (?P<signal>\S+) on workflow ")
_SDK_LOGGER = "temporalio.worker._workflow_instance"


class _DroppedSignals(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        match = _DROPPED.match(str(record.msg))
        if match is None:
            return True
        try:
            replaying = workflow.unsafe.is_replaying()
        except Exception:  # not in a workflow context: report it as is
            replaying = False
        if replaying:
            return False
        details = getattr(record, "temporal_workflow", {}) or {}
        signal = match.group("signal")
        SIGNALS_DROPPED.labels(str(details.get("task_queue", "")), signal).inc()
        reason = record.exc_info[1] if record.exc_info else None
        record.msg = "signal dropped: its argument does not fit the signal's declared type"
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.signal = signal
        record.reason = " ".join(str(getattr(reason, "__cause__", None) or reason).split())
        return True


def install_dropped_signal_handling() -> None:
    """Attach the filter to the SDK's workflow logger (once per process)."""
    logger = logging.getLogger(_SDK_LOGGER)
    if not any(isinstance(f, _DroppedSignals) for f in logger.filters):
        logger.addFilter(_DroppedSignals())
