"""The ``fleet new-queue`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fleet_devtools import histories
from fleet_devtools._scaffold import ScaffoldError, workspace_root, write_queue


def _run(args: argparse.Namespace) -> int:
    try:
        root = args.root.resolve() if args.root else workspace_root(Path.cwd())
        written = write_queue(args.name, root)
    except ScaffoldError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(f"created {path.relative_to(root)}")
    print(
        f"\nNext: `uv sync` registers queue {args.name!r}; `make histories QUEUE={args.name}` "
        "records its replay histories; `make sync` adds it to the compose stack and the chart "
        "(`make new-queue` does all three). Then make it yours with the checklist in "
        "docs/how-to/add-a-queue.md."
    )
    return 0


def register(subparsers: Any) -> None:
    """Add ``new-queue`` and ``freeze-history`` to the ``fleet`` CLI."""
    histories.register(subparsers)
    p = subparsers.add_parser(
        "new-queue",
        help="generate a new queue service (development tool)",
        description="Generate services/NAME and tests/services/NAME, registered and tested.",
    )
    p.add_argument("name", help="queue name: lower-case letters and digits, e.g. billing")
    p.add_argument("--root", type=Path, help="workspace root (default: found from the cwd)")
    p.set_defaults(func=_run)
