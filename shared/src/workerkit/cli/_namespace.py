"""``fleet namespace ensure``: register a namespace if it is missing, and set its retention."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

from temporalio.client import Client
from workerkit._env_settings import parse_duration
from workerkit._namespace import ensure_namespace
from workerkit.cli._common import Subparsers, UsageError, add_connect_timeout, with_client

__all__ = ["NAMESPACE_NAME", "register"]

# Namespace names: letters, digits, "-", "_" and "." (what the server and Temporal Cloud
# take); an empty, blank or spaced name is refused here rather than by the server.
NAMESPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")


def _cmd_namespace_ensure(args: argparse.Namespace) -> int:
    try:
        retention = parse_duration(args.retention)
    except ValueError:
        raise UsageError(
            f"--retention {args.retention!r} is not a duration (e.g. 7d, 72h)"
        ) from None
    if retention < timedelta(days=1):
        raise UsageError("--retention must be at least 1d (Temporal's minimum)")
    if not NAMESPACE_NAME.match(args.name):
        raise UsageError(
            f"namespace name {args.name!r} is invalid: 2 to 255 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )

    async def body(client: Client) -> int:
        outcome = await ensure_namespace(
            client, args.name, retention=retention, description=args.description
        )
        print(f"namespace {args.name}: {outcome} (retention {args.retention})")
        return 0

    return with_client(args, body)


def register(sub: Subparsers) -> None:
    """Add ``fleet namespace`` and its action to the CLI."""
    ns = sub.add_parser("namespace", help="manage Temporal namespaces")
    actions = ns.add_subparsers(dest="namespace_command", required=True, metavar="ACTION")
    p = actions.add_parser("ensure", help="register a namespace if missing; set its retention")
    # A one-shot job before the workers (compose, a Helm hook): the server may still be starting.
    add_connect_timeout(p, default="60s")
    p.add_argument("name")
    p.add_argument("--retention", default="7d", help="workflow history retention (default 7d)")
    p.add_argument("--description", default="")
    p.set_defaults(func=_cmd_namespace_ensure)
