"""Freed heap pages go back to the system: what ``WORKER_MEMORY_TRIM_INTERVAL`` relies on."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from workerkit import WorkerSettings
from workerkit._memory import release_free_memory, trim_memory_every


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_freed_heap_pages_are_returned_to_the_system() -> None:
    # 4 kB blocks come from glibc's heap (CPython's own allocator takes up to 512 bytes);
    # the last one, kept, pins the top of the heap, so free() alone returns nothing.
    blocks = [bytes(4000) for _ in range(20_000)]
    kept = blocks[-1]
    del blocks
    before = rss_mib()
    assert release_free_memory()
    after = rss_mib()
    assert before - after > 50, f"RSS {before:.1f} -> {after:.1f} MiB"
    assert len(kept) == 4000


def test_an_interval_of_zero_turns_trimming_off() -> None:
    settings = WorkerSettings.from_env({"WORKER_MEMORY_TRIM_INTERVAL": "0"})
    assert settings.memory_trim_interval == timedelta(0)
    assert WorkerSettings.from_env({}).memory_trim_interval == timedelta(seconds=60)
    asyncio.run(asyncio.wait_for(trim_memory_every(0), timeout=1))  # returns at once
