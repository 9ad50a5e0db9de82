"""The processes the bench starts: their environment, /proc readings, readiness and stop."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.request
from pathlib import Path

from bench_error import BenchError

BENCH_DIR = Path(__file__).resolve().parent
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
PROBE_INTERVAL_S = 0.01


def base_env(pycache: Path | None = None) -> dict[str, str]:
    """This process's environment without Temporal/worker/OTel/database/service settings.

    With ``pycache``, workers write and read compiled bytecode there, as the images ship it
    (``UV_COMPILE_BYTECODE``): the sandbox re-imports a workflow's module for every run, and
    without bytecode it would compile the source each time, a cost production never pays.
    """
    scrubbed = ("TEMPORAL_", "WORKER_", "OTEL_", "DATABASE_", "ORDERS_", "FLEET_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(scrubbed)}
    # Workers import workload and project_worker from here, ahead of site-packages: the
    # bench's helper modules have an underscore in their names, which no queue name has, so
    # none of them can shadow a queue's package.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")]))
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def read_status(pid: int) -> dict[str, int]:
    """The numeric fields of ``/proc/<pid>/status``, read once (memory in kB)."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        first = rest.split()[:1]
        if first and first[0].isdigit():
            values[key] = int(first[0])
    return values


def read_rss_mib(pid: int) -> tuple[float, float]:
    """Return (VmRSS, VmHWM) of ``pid`` in MiB."""
    status = read_status(pid)
    return status["VmRSS"] / 1024, status["VmHWM"] / 1024


def read_cpu_s(pid: int) -> float:
    """The process's CPU time so far, user + system (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` of a process's log, headed for an error message ("" if none)."""
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return f"\n--- last lines of {path} ---\n" + "\n".join(tail) if tail else ""


def probe(url: str) -> bool:
    """Whether ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:  # refused, or HTTPError 503 while starting
        return False


async def wait_readyz(
    proc: asyncio.subprocess.Process, http_port: int, timeout_s: float = READY_TIMEOUT_S
) -> None:
    """Probe a project worker's ``/readyz`` until it answers 200."""
    url = f"http://127.0.0.1:{http_port}/readyz"
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(probe, url):
        if proc.returncode is not None:
            raise BenchError(f"exited before ready, with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise BenchError(f"/readyz not 200 within {timeout_s:g}s")
        await asyncio.sleep(PROBE_INTERVAL_S)


async def stop(proc: asyncio.subprocess.Process, grace_s: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM ``proc`` and return its exit code; kill it if it outlives ``grace_s``."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(proc.wait(), grace_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise BenchError(f"pid {proc.pid} still running {grace_s:g}s after SIGTERM") from None
