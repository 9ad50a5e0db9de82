"""Where a soaked worker's memory goes: the Python heap, the C heap and the objects, over time.

``bench/soak.py --heap-probe DIR`` puts this directory first on each worker's ``PYTHONPATH``,
so Python imports this module at start-up. With ``HEAPPROBE_DIR`` set, a daemon thread
appends one line to ``heap.jsonl`` every ``HEAPPROBE_EVERY`` seconds (default 60):

- ``rss_kib`` and ``threads``: the process as the kernel sees it;
- ``malloc_in_use`` and ``malloc_free``: glibc's heap (``mallinfo2``), which serves every
  native allocation (the SDK core's, in Rust, too) and Python's large objects: in use, and
  held but free (fragmentation: RSS that no live object explains);
- ``mmap_bytes``: glibc's separate mappings of large blocks;
- ``rss_arenas_kib``, ``rss_anon_kib``, ``rss_file_kib``: RSS split by mapping
  (``/proc/self/smaps``): glibc's arenas (the main heap and the 64 MiB-aligned heaps of the
  thread arenas), other anonymous memory (Python's object arenas, thread stacks, large
  blocks), and mapped files (code, shared libraries);
- ``pymalloc_blocks``: the blocks Python's own allocator holds (``sys.getallocatedblocks``);
- ``py_threads``: Python's threads by name, numbers stripped (which pool grew);
- ``types``: the live object count of the 40 most common types (``gc.get_objects``).

With ``HEAPPROBE_FRAMES`` above 0 it also traces every Python allocation (tracemalloc, that
many frames each) and writes ``snap-NNN.pickle`` beside: where the Python heap grew, by
allocation site. Tracing slows the worker several times over, so only a low rate stays
representative; the counts alone cost a fraction of a percent.

``bench/heapdiff.py DIR`` reads them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import re
import sys
import threading
import time
import tracemalloc
from collections import Counter
from typing import Any


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _mallinfo() -> dict[str, int]:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
    except (OSError, AttributeError):  # not glibc, or older than 2.33
        return {}
    info = libc.mallinfo2()
    return {
        "malloc_in_use": info.uordblks,
        "malloc_free": info.fordblks,
        "mmap_bytes": info.hblkhd,
    }


def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "Threads:")):
                key, value = line.split()[:2]
                out[{"VmRSS:": "rss_kib", "Threads:": "threads"}[key]] = int(value)
    return out


def _rss_by_mapping() -> dict[str, int]:
    sums = {"rss_arenas_kib": 0, "rss_anon_kib": 0, "rss_file_kib": 0}
    kind = "rss_anon_kib"
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            first = line.split(maxsplit=6)
            if "-" in first[0] and len(first) >= 5 and not first[0].endswith(":"):
                start = int(first[0].split("-")[0], 16)
                name = first[5].strip() if len(first) > 5 else ""
                if name == "[heap]" or (not name and start % (64 << 20) == 0):
                    kind = "rss_arenas_kib"
                elif name.startswith("/"):
                    kind = "rss_file_kib"
                else:
                    kind = "rss_anon_kib"
            elif line.startswith("Rss:"):
                sums[kind] += int(line.split()[1])
    return sums


def _probe(out: str, every: float, tracing: bool) -> None:
    begin, n = time.monotonic(), 0
    while True:
        time.sleep(every)
        line: dict[str, Any] = {"n": n, "at_s": round(time.monotonic() - begin, 1)}
        line |= _status() | _mallinfo() | _rss_by_mapping()
        line["pymalloc_blocks"] = sys.getallocatedblocks()
        if tracing:
            tracemalloc.take_snapshot().dump(os.path.join(out, f"snap-{n:03d}.pickle"))
            line["traced_bytes"] = tracemalloc.get_traced_memory()[0]
        names = Counter(re.sub(r"[-_]?\d+", "", t.name) for t in threading.enumerate())
        line["py_threads"] = dict(names)
        types = Counter(type(o).__qualname__ for o in gc.get_objects())
        line["types"] = dict(types.most_common(40))
        with open(os.path.join(out, "heap.jsonl"), "a") as f:
            f.write(json.dumps(line) + "\n")
        n += 1


def _start() -> None:
    out = os.environ.get("HEAPPROBE_DIR")
    if not out:
        return
    os.makedirs(out, exist_ok=True)
    frames = int(os.environ.get("HEAPPROBE_FRAMES", "0"))
    if frames > 0:
        tracemalloc.start(frames)
    every = float(os.environ.get("HEAPPROBE_EVERY", "60"))
    args = (out, every, frames > 0)
    threading.Thread(target=_probe, args=args, name="heapprobe", daemon=True).start()


_start()
