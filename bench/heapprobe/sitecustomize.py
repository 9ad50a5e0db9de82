"""Heap snapshots of a soaked worker, by allocation site, over time.

``bench/soak.py --heap-snapshots DIR`` puts this directory first on each worker's
``PYTHONPATH``, so Python imports this module at start-up. With ``HEAPPROBE_DIR`` set, it
starts tracemalloc (``HEAPPROBE_FRAMES`` frames per allocation, default 12) and, every
``HEAPPROBE_EVERY`` seconds (default 60) from a daemon thread, writes ``snap-NNN.pickle`` (a ``tracemalloc.Snapshot``) and appends one line
to ``heap.jsonl``: the time, the bytes tracemalloc traces, the process's RSS, and the live
object count of each of the 40 most common types. ``bench/heapdiff.py DIR`` reads them.

Tracing every allocation slows the worker several times over: a probed soak finds where
memory goes; its CPU and RSS figures are not the worker's.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
import tracemalloc
from collections import Counter


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _probe(out: str, every: float) -> None:
    begin, n = time.monotonic(), 0
    while True:
        time.sleep(every)
        snapshot = tracemalloc.take_snapshot()
        snapshot.dump(os.path.join(out, f"snap-{n:03d}.pickle"))
        types = Counter(type(o).__qualname__ for o in gc.get_objects())
        line = {
            "n": n,
            "at_s": round(time.monotonic() - begin, 1),
            "traced_bytes": tracemalloc.get_traced_memory()[0],
            "rss_kib": _rss_kib(),
            "threads": threading.active_count(),
            "types": dict(types.most_common(40)),
        }
        with open(os.path.join(out, "heap.jsonl"), "a") as f:
            f.write(json.dumps(line) + "\n")
        n += 1


def _start() -> None:
    out = os.environ.get("HEAPPROBE_DIR")
    if not out:
        return
    os.makedirs(out, exist_ok=True)
    tracemalloc.start(int(os.environ.get("HEAPPROBE_FRAMES", "12")))
    every = float(os.environ.get("HEAPPROBE_EVERY", "60"))
    threading.Thread(target=_probe, args=(out, every), name="heapprobe", daemon=True).start()


_start()
