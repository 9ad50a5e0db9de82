"""The ``fleet`` command: workers and queues, workflows and schedules, deploys and rollouts,
the services' database, payload keys and the codec server, namespaces.

Each command module adds its own commands (its ``register``), as does any installed package
that registers a ``workerkit.commands`` entry point; the options several share, such as
``--connect-timeout``, are declared once in ``_common``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import NoReturn

from temporalio.service import RPCError
from workerkit._exceptions import ConfigurationError, WorkerkitError
from workerkit._runner import EXIT_USAGE, exit_process  # a worker's exit code for bad settings too
from workerkit.cli import (
    _codec,
    _db,
    _deploy,
    _limits,
    _namespace,
    _queues,
    _schedules,
    _size,
    _status,
    _workflows,
)

__all__ = ["build_parser", "main", "run"]

COMMANDS_ENTRY_POINT_GROUP = "workerkit.commands"


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (its subcommands' parsers are of this class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``fleet`` command's parser, every subcommand added (the CLI reference reads it)."""
    parser = _Parser(
        prog="fleet",
        description="Run and drive the Temporal worker fleet. Connection settings come from "
        "TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE.",
        epilog="Every command and option: docs/reference/cli.md; every variable: "
        "docs/reference/settings.md (in the repository; make docs-serve to browse the site).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # In this order in `fleet --help`.
    for module in (
        _queues,
        _status,
        _workflows,
        _namespace,
        _schedules,
        _limits,
        _size,
        _deploy,
        _codec,
        _db,
    ):
        module.register(sub)

    # Development tools installed in the workspace (e.g. the queue scaffold) add their
    # commands here; production images don't install them, so they don't appear there.
    for ep in entry_points(group=COMMANDS_ENTRY_POINT_GROUP):
        ep.load()(sub)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    args = build_parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.func
    try:
        return command(args)
    except ConfigurationError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (WorkerkitError, RPCError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def main() -> NoReturn:
    """Console-script entry point."""
    exit_process(run())
