"""``fleet freeze-history``: keep a recorded history as it is, so an older shape stays proven.

``make histories`` rewrites every ``recorded/`` history from today's test scenarios. Before a
change to a workflow, freezing one copies it to ``frozen/NAME.json``, which nothing rewrites:
the replay tests and the replay gate then keep proving that executions started before the
change still replay on the code after it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from workerkit import ConfigurationError, get_queue

__all__ = ["freeze", "register"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,79}$")


class FreezeError(Exception):
    """What stops a freeze, in one line."""


def freeze(queue: str, scenario: str, name: str) -> Path:
    """Copy ``queue``'s recorded history ``scenario`` to ``frozen/<name>.json``; return it.

    Raises:
        FreezeError: An unknown queue, no histories package, no such recorded history, a name
            that is not lower-case letters, digits and ``_``, or a frozen history of that name.
    """
    try:
        package = get_queue(queue).histories
    except ConfigurationError as err:
        raise FreezeError(str(err)) from None
    if package is None:
        raise FreezeError(f"queue {queue!r} declares no histories package (Queue.histories)")
    if not _NAME.match(name):
        raise FreezeError(f"name {name!r}: lower-case letters, digits and '_' (e.g. {scenario}_v1)")
    root = Path(str(resources.files(package)))
    source = root / "recorded" / f"{scenario}.json"
    if not source.is_file():
        known = ", ".join(sorted(p.stem for p in (root / "recorded").glob("*.json"))) or "none"
        raise FreezeError(f"no recorded history {scenario!r} of {queue}; recorded: {known}")
    target = root / "frozen" / f"{name}.json"
    if target.exists():
        raise FreezeError(f"{target.name} is already frozen: frozen histories are never replaced")
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(source, target)
    return target


def _run(args: argparse.Namespace) -> int:
    try:
        target = freeze(args.queue, args.scenario, args.name)
    except FreezeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"froze {args.queue}'s {args.scenario} as {target}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``freeze-history`` to the ``fleet`` CLI."""
    p = subparsers.add_parser(
        "freeze-history",
        help="keep a recorded workflow history as it is (development tool)",
        description=(__doc__ or "").split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument("queue", help="the queue, e.g. orders")
    p.add_argument("scenario", help="its recorded history, e.g. happy_path")
    p.add_argument("name", help="the frozen copy's name, e.g. happy_path_before_fraud_screening")
    p.set_defaults(func=_run)
