"""Give the C heap's free pages back to the operating system.

CPython frees an object's memory to the C allocator, and glibc keeps freed pages mapped
unless they sit at the very top of its heap. A worker frees a lot once (the garbage of
importing and connecting) and then keeps freeing and reallocating (workflow runs,
activations, payloads), so its resident size is partly pages that hold nothing. glibc's
``malloc_trim`` returns them; nothing calls it on its own. The worker calls it once it is
ready and then every ``WORKER_MEMORY_TRIM_INTERVAL``: a replica's working set, what a
memory limit and the scheduler count, is then what it uses. Where the C library has no
``malloc_trim`` (musl, macOS) this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
from collections.abc import Callable

__all__ = ["release_free_memory", "trim_memory_every"]

_log = logging.getLogger("workerkit.memory")


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return the C heap's free pages to the system; False where that is not supported."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)  # ctypes releases the GIL for the call: other threads keep running
    return True


async def trim_memory_every(interval: float) -> None:
    """Release free memory now and then every ``interval`` seconds (off when not above 0)."""
    if interval <= 0:
        return
    while True:
        if not await asyncio.to_thread(release_free_memory):
            _log.debug("malloc_trim is not available: memory trimming is off")
            return
        await asyncio.sleep(interval)
