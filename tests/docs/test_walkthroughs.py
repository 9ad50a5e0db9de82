"""The walks a newcomer follows, run as written: the Quick start's shell blocks against a real
dev server and the workers ``make dev`` runs (the first-queue tutorial runs in
tests/tools/test_scaffold.py, in the copy of the repository it scaffolds)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import WorkerProcess, free_port, http_get, start_worker
from support.processes import stop_process
from support.temporal import start_dev_server
from support.walk import shell_blocks, walk

REPO = Path(__file__).resolve().parents[2]
QUICK_START = REPO / "docs" / "tutorials" / "quick-start.md"

pytestmark = pytest.mark.slow


@pytest.fixture
def make_dev(tmp_path: Path) -> Iterator[tuple[str, WorkerProcess]]:
    """What ``make dev`` runs: a dev server (worker heartbeats on), the services' SQLite
    migrated, every queue's worker in one process with the sandbox on and readable logs."""
    port = free_port()
    server = start_dev_server(
        port,
        dynamic_config=(
            "frontend.WorkerHeartbeatsEnabled=true",
            "frontend.ListWorkersEnabled=true",
        ),
    )
    address = f"127.0.0.1:{port}"
    try:
        worker = start_worker(
            ["--all"],
            address=address,
            workdir=tmp_path,
            name="make-dev",
            env={"WORKER_WORKFLOW_SANDBOX": "true", "WORKER_LOG_FORMAT": "text"},
        )
        worker.wait_ready(timeout=60)
        yield address, worker
        worker.kill()
    finally:
        stop_process(server)


def json_documents(text: str) -> list[dict[str, Any]]:
    """The JSON documents the commands printed, in order."""
    decoder, found, i = json.JSONDecoder(), [], 0
    while (start := text.find("{", i)) != -1:
        document, i = decoder.raw_decode(text, start)
        found.append(document)
    return found


def test_the_quick_start_marks_what_the_test_provides() -> None:
    blocks = shell_blocks(QUICK_START)
    provided = [b for b in blocks if b.mode == "provided"]
    assert [b.text.split()[:2] for b in provided] == [["make", "dev"]]
    assert sum(b.mode == "run" for b in blocks) >= 1


@pytest.mark.timeout(600)
def test_the_quick_start_runs_as_written(make_dev: tuple[str, WorkerProcess]) -> None:
    address, worker = make_dev
    out = walk(
        QUICK_START,
        cwd=REPO,
        env={**os.environ, "UV_FROZEN": "1"},
        ports={7233: int(address.rsplit(":", 1)[1]), 9000: worker.port},
    )
    started, status, *_, result = json_documents(out)
    assert started["started"] is True and started["workflow_id"] == "order-A-1001"
    assert status["stage"] == "awaiting_confirmation"  # as the page says
    # The last command prints the OrderResult: shipped to the address the update set.
    assert result["shipped_to"]["city"] == "Paris", out
    assert result["tracking_number"], out
    # And the page's metrics are there, the orders queue's own included.
    metrics = http_get(worker.url("/metrics"))[1]
    for name in ("temporal_workflow_completed", "workerkit_workflow_executions_total"):
        assert re.search(rf"^{name}\{{", metrics, re.M), name
    assert re.search(r'^orders_value_cents_count\{[^}]*outcome="completed"', metrics, re.M)
