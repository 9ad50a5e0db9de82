"""``fleet codec keygen``: a new key for the payload encryption keyring."""

from __future__ import annotations

import argparse

from workerkit._codec import KEYS_VARIABLE, new_key


def _cmd_keygen(args: argparse.Namespace) -> int:
    print(new_key(args.id))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``fleet codec`` and its actions to the CLI."""
    codec = sub.add_parser("codec", help="payload encryption keys")
    actions = codec.add_subparsers(dest="codec_command", required=True, metavar="ACTION")
    p = actions.add_parser(
        "keygen",
        help=f"print a new KEY_ID:BASE64 key; put it first in {KEYS_VARIABLE} to rotate",
    )
    p.add_argument("--id", help="the key id (default: k<YYYYMMDD>)")
    p.set_defaults(func=_cmd_keygen)
