"""Where a soaked worker's Python heap grew: compare two of its heap snapshots.

    uv run python bench/heapdiff.py DIR [--from N] [--to M] [--top 15] [--group traceback]

``DIR`` holds what ``bench/soak.py --heap-snapshots DIR`` wrote. It prints, between snapshot
``--from`` (default: the one a third of the way in, after the warm-up) and ``--to`` (default:
the last), the RSS and the traced Python heap at both ends (so the growth is split between
Python objects and the rest: native code, the allocator's fragmentation), the object types
whose live count grew most, and the allocation sites that grew most.
"""

from __future__ import annotations

import argparse
import json
import sys
import tracemalloc
from pathlib import Path

IGNORED = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
    tracemalloc.Filter(False, "*/heapprobe/sitecustomize.py"),
)


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
        print(f"heapdiff: {args.dir} holds {len(lines)} snapshots, 2 are needed", file=sys.stderr)
        return 2
    start = lines[args.start if args.start is not None else len(lines) // 3]
    end = lines[args.end if args.end is not None else -1]
    minutes = (end["at_s"] - start["at_s"]) / 60
    rss = (end["rss_kib"] - start["rss_kib"]) / 1024
    traced = (end["traced_bytes"] - start["traced_bytes"]) / 2**20
    print(f"snapshots {start['n']} -> {end['n']} ({minutes:.1f} min)")
    print(f"  RSS          {start['rss_kib'] / 1024:8.1f} -> {end['rss_kib'] / 1024:8.1f} MiB")
    print(f"  Python heap  {start['traced_bytes'] / 2**20:8.1f} -> ", end="")
    print(f"{end['traced_bytes'] / 2**20:8.1f} MiB (traced)")
    print(f"  growth: RSS {rss:+.1f} MiB, traced {traced:+.1f} MiB, untraced {rss - traced:+.1f}")
    print(f"  threads      {start['threads']} -> {end['threads']}")
    grew = {t: end["types"].get(t, 0) - n for t, n in start["types"].items()}
    grew |= {t: n for t, n in end["types"].items() if t not in start["types"]}
    print("types whose live count grew most:")
    for name, delta in sorted(grew.items(), key=lambda kv: -kv[1])[: args.top]:
        if delta > 0:
            print(f"  {delta:+9d}  {name} (now {end['types'].get(name, 0)})")
    old = tracemalloc.Snapshot.load(str(args.dir / f"snap-{start['n']:03d}.pickle"))
    new = tracemalloc.Snapshot.load(str(args.dir / f"snap-{end['n']:03d}.pickle"))
    stats = new.filter_traces(IGNORED).compare_to(old.filter_traces(IGNORED), args.group)
    print("allocation sites that grew most:")
    for stat in stats[: args.top]:
        print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks")
        frames = stat.traceback.format(most_recent_first=True)
        for frame in frames[: 2 if args.group != "traceback" else 12]:
            print(f"      {frame.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
