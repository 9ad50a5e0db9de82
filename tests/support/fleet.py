"""The project's ``fleet`` CLI: commands run to completion, and its long-running subprocesses
(``fleet worker``, ``fleet codec-server``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import workerkit

from support.cgroups import memory_cgroup, remove_cgroup
from support.net import free_port, http_get


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


@dataclass
class WorkerProcess:
    """A ``fleet worker`` subprocess with its HTTP port."""

    proc: subprocess.Popen[str]
    port: int
    log_path: Path
    started_at: float = field(default_factory=time.monotonic)
    cgroup: Path | None = None  # its own memory cgroup, removed by kill()

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
        if self.cgroup is not None:
            remove_cgroup(self.cgroup)


def start_worker(
    args: Sequence[str],
    *,
    address: str,
    workdir: Path,
    name: str,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    memory_limit: int | None = None,
) -> WorkerProcess:
    """Start ``fleet worker ARGS`` against ``address``, logging to ``workdir/name.log``.

    Service state goes to a SQLite file in ``workdir``, migrated here (unless ``env`` names
    a ``DATABASE_URL``); ``env`` overrides anything. With ``memory_limit`` (bytes) the
    worker runs in a cgroup of its own with that limit, as in a container that has one.
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
    cgroup = memory_cgroup(memory_limit) if memory_limit is not None else None

    def enter_cgroup() -> None:  # in the child, before exec: the worker starts inside it
        if cgroup is not None:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))

    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [fleet_cli(), "worker", *args],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=enter_cgroup if cgroup is not None else None,
        )
    return WorkerProcess(proc=proc, port=port, log_path=log_path, cgroup=cgroup)


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
