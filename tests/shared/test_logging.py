"""Log hygiene: no payload data at any level, and text logs that a value cannot forge."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator

import pytest
from temporalio.client import Client
from workerkit import Queue, configure_logging, launch
from workerkit._logging import _JsonFormatter, _TextFormatter

from support import WorkerProcess
from support.fixture_queue import FixtureWorkflow, Parcel, Stage, wait_for_stage

SpawnWorker = Callable[..., WorkerProcess]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("temporalio.worker").level)
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    logging.getLogger("temporalio.worker").setLevel(saved[2])


def record(message: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("svc", logging.WARNING, __file__, 1, message, (), None)
    rec.__dict__.update(extra)
    return rec


def test_text_logs_escape_control_characters_in_messages_and_fields() -> None:
    forged = "ok\n2026-01-01 00:00:00,000 INFO    fleet: payment approved\x1b[31m\r"
    line = _TextFormatter().format(record(forged, order_id="A-1\nlevel=info"))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "ok\\n2026-01-01" in line and "\\x1b[31m\\r" in line
    assert "order_id=A-1\\nlevel=info" in line


def test_text_logs_keep_the_traceback_below_the_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = logging.LogRecord("svc", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    first, *rest = _TextFormatter().format(rec).split("\n")
    assert first.endswith("svc: failed") and rest[0] == "Traceback (most recent call last):"


def test_json_logs_are_one_line_whatever_the_value() -> None:
    line = _JsonFormatter().format(record("a\nb", detail="c\rd"))
    assert "\n" not in line and json.loads(line)["msg"] == "a\nb"


@pytest.mark.usefixtures("restore_logging")
def test_debug_level_keeps_the_sdks_payload_loggers_at_info() -> None:
    configure_logging(level="debug", fmt="json")
    assert logging.getLogger("svc").isEnabledFor(logging.DEBUG)
    for name in ("temporalio.worker._workflow", "temporalio.worker._activity"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
        assert logging.getLogger(name).isEnabledFor(logging.INFO), name


@pytest.mark.slow
async def test_a_debug_worker_logs_no_payload_data(
    client: Client, spawn_worker: SpawnWorker, fixture_queue: Queue
) -> None:
    worker = spawn_worker("fixture", env={"WORKER_LOG_LEVEL": "debug"})
    worker.wait_ready()
    marker = uuid.uuid4().hex[:10]
    parcel = Parcel(
        parcel_id=f"log-{marker}",
        recipient=f"Name {marker}",
        address=f"Street {marker}, City",
        token=f"tok_{marker}",
        units=1,
    )
    launched = await launch(client, fixture_queue, FixtureWorkflow.run, parcel)
    # By then the check activity has taken the whole parcel and returned.
    await wait_for_stage(launched.handle, Stage.AWAITING_APPROVAL)
    log = worker.log()
    assert '"level": "debug"' in log, "the worker logs at debug"
    for secret in (f"tok_{marker}", f"Street {marker}", f"Name {marker}"):
        assert secret not in log, f"{secret!r} is in the worker's debug log"
    # The SDK's line that carries every activity result's payloads is not written.
    assert "Completing activity with completion" not in log
    await launched.handle.terminate("log test done")
