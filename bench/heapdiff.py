"""Where a soaked worker's memory grew, from what ``bench/soak.py --heap-probe DIR`` wrote.

    uv run python bench/heapdiff.py DIR/<worker> [--from N] [--to M] [--top 15]

Between probe line ``--from`` (default: the one a third of the way in, after the warm-up) and
``--to`` (default: the last) it prints how RSS grew and what it grew in: glibc's heap in use
(native allocations, the SDK core's included, and Python's large objects), held but free
(fragmentation), its separate large mappings, and Python's own allocator (blocks); then the
object types whose live count grew most; and, if the probe traced (``--trace-frames``), the
Python allocation sites that grew most.
"""

from __future__ import annotations

import argparse
import json
import sys
import tracemalloc
from pathlib import Path
from typing import Any

IGNORED = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
    tracemalloc.Filter(False, "*/heapprobe/sitecustomize.py"),
)
MIB = 2**20


def figures(start: dict[str, Any], end: dict[str, Any]) -> list[str]:
    lines = []
    for key, label, scale in (
        ("rss_kib", "RSS", 1024),
        ("rss_arenas_kib", "  of it glibc arenas", 1024),
        ("rss_anon_kib", "  other anonymous", 1024),
        ("rss_file_kib", "  mapped files", 1024),
        ("malloc_in_use", "C heap in use", 1),
        ("malloc_free", "C heap free", 1),
        ("mmap_bytes", "C mmap'd blocks", 1),
        ("traced_bytes", "Python heap (traced)", 1),
    ):
        if key in start and key in end:
            a, b = start[key] * scale / MIB, end[key] * scale / MIB
            lines.append(f"  {label:<22} {a:9.1f} -> {b:9.1f} MiB  ({b - a:+.1f})")
    for key, label in (("pymalloc_blocks", "Python blocks"), ("threads", "threads")):
        if key in start and key in end:
            a, b = start[key], end[key]
            lines.append(f"  {label:<22} {a:9d} -> {b:9d}      ({b - a:+d})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--from", dest="start", type=int)
    parser.add_argument("--to", dest="end", type=int)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--group", choices=("lineno", "traceback", "filename"), default="lineno")
    args = parser.parse_args(argv)
    lines = [json.loads(x) for x in (args.dir / "heap.jsonl").read_text().splitlines()]
    if len(lines) < 2:
        print(f"heapdiff: {args.dir} holds {len(lines)} probe lines, 2 are needed", file=sys.stderr)
        return 2
    start = lines[args.start if args.start is not None else len(lines) // 3]
    end = lines[args.end if args.end is not None else -1]
    print(f"probe lines {start['n']} -> {end['n']} ({(end['at_s'] - start['at_s']) / 60:.1f} min)")
    print("\n".join(figures(start, end)))
    if "py_threads" in start and "py_threads" in end:
        pools = sorted(set(start["py_threads"]) | set(end["py_threads"]))
        counts = [
            f"{p} {start['py_threads'].get(p, 0)}->{end['py_threads'].get(p, 0)}" for p in pools
        ]
        print(f"  Python threads by name: {', '.join(counts)}")
    grew = {t: end["types"].get(t, 0) - n for t, n in start["types"].items()}
    grew |= {t: n for t, n in end["types"].items() if t not in start["types"]}
    print("object types whose live count grew most:")
    for name, delta in sorted(grew.items(), key=lambda kv: -kv[1])[: args.top]:
        if delta > 0:
            print(f"  {delta:+9d}  {name} (now {end['types'].get(name, 0)})")
    old_path = args.dir / f"snap-{start['n']:03d}.pickle"
    new_path = args.dir / f"snap-{end['n']:03d}.pickle"
    if not (old_path.exists() and new_path.exists()):
        return 0
    old = tracemalloc.Snapshot.load(str(old_path)).filter_traces(IGNORED)
    new = tracemalloc.Snapshot.load(str(new_path)).filter_traces(IGNORED)
    print("Python allocation sites that grew most:")
    for stat in new.compare_to(old, args.group)[: args.top]:
        print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks")
        frames = stat.traceback.format(most_recent_first=True)
        for frame in frames[: 2 if args.group != "traceback" else 20]:
            print(f"      {frame.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
