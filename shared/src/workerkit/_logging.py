"""Log configuration: JSON lines for production, readable lines for development.

The SDK's ``activity.logger`` and ``workflow.logger`` attach the execution's details
as ``temporal_activity`` / ``temporal_workflow`` extras; both formatters lift them
into top-level fields (workflow_id, run_id, activity_type, attempt, task_queue),
and add the current OpenTelemetry trace id.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from temporalio import activity, workflow

__all__ = ["configure_logging", "record_fields"]

# LogRecord attributes that are not user extras.
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_RENAMES = {"workflow_run_id": "run_id"}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Return the structured fields of ``record``: Temporal details, extras, trace id."""
    out: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key in _RESERVED or key.startswith("_"):
            continue
        if key in ("temporal_activity", "temporal_workflow") and isinstance(value, dict):
            for k, v in value.items():
                out[_RENAMES.get(str(k), str(k))] = v
        else:
            out[key] = value
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        out["trace_id"] = format(span.trace_id, "032x")
        out["span_id"] = format(span.span_id, "016x")
    return out


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(record_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


# Control characters (a newline above all) in a message or a field would let a value forge
# log lines in text mode: they are written escaped, as Python writes them in a repr.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)} | {
    0x0A: "\\n",
    0x0D: "\\r",
    0x09: "\\t",
}


def _escaped(value: object) -> str:
    return str(value).translate(_ESCAPES)


class _TextFormatter(logging.Formatter):
    """One line per record (the traceback, if any, follows it), control characters escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        head = f"{self.formatTime(record)} {record.levelname:<7} {record.name}: "
        line = head + _escaped(record.getMessage())
        fields = record_fields(record)
        if fields:
            extras = " ".join(f"{k}={_escaped(v)}" for k, v in fields.items() if k != "span_id")
            line = f"{line}  [{extras}]"
        return line


# The SDK's worker loggers print whole activations and completions at DEBUG: payloads and
# failures, i.e. customer data (in plaintext, whatever the codec does to what is stored).
# They log at INFO and above whatever level is configured.
PAYLOAD_LOGGERS = ("temporalio.worker",)
# Libraries that narrate routine work at INFO: Alembic says which dialect it uses every time
# readiness checks the schema (every few seconds). Below WARNING they speak only at debug.
CHATTY_LOGGERS = ("alembic",)


def configure_logging(*, level: str = "info", fmt: str = "json") -> None:
    """Send all logs to stderr in ``fmt`` ("json" or "text") at ``level``.

    Even at ``debug``, the SDK loggers that would print payloads stay at ``info``.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(max(root.level, logging.INFO))
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(
            logging.DEBUG if root.level <= logging.DEBUG else max(root.level, logging.WARNING)
        )
    # The formatters render execution details as fields; don't repeat them in the message.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
