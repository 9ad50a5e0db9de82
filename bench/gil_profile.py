"""``--profile``: sample a worker with py-spy and name the functions that hold the GIL."""

from __future__ import annotations

import asyncio
import shutil
from asyncio.subprocess import DEVNULL
from pathlib import Path

from bench_error import BenchError


async def start_profiler(pid: int, output: Path) -> asyncio.subprocess.Process:
    """Sample ``pid`` with py-spy until it exits, writing collapsed stacks to ``output``.

    Non-blocking sampling never pauses the worker; ``--gil`` counts only the thread that
    holds the interpreter, which is where CPU time goes in a Python worker.
    """
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise BenchError("--profile needs py-spy on PATH (pip install py-spy)")
    argv = ["record", "--pid", str(pid), "--nonblocking", "--gil", "--rate", "250"]
    argv += ["--format", "raw", "--output", str(output)]
    return await asyncio.create_subprocess_exec(
        py_spy, *argv, stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL
    )


def hottest(collapsed: Path, count: int = 12) -> list[tuple[float, str]]:
    """The frames with the most samples on top of the stack, as (share, frame)."""
    own: dict[str, int] = {}
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frame = stack.rsplit(";", 1)[-1]
        own[frame] = own.get(frame, 0) + int(samples)
    total = max(sum(own.values()), 1)
    return [(n / total, frame) for frame, n in sorted(own.items(), key=lambda kv: -kv[1])][:count]
