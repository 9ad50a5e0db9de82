"""``fleet codec keygen`` and ``fleet codec-server``: the payload encryption's tools."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from workerkit._codec_server import CodecServer, parse_origins
from workerkit._encryption import KEYS_VARIABLE, EncryptionCodec, load_keyring, new_key
from workerkit.cli._common import Subparsers, UsageError

TOKEN_VARIABLE = "FLEET_CODEC_TOKEN"
TOKEN_FILE_VARIABLE = "FLEET_CODEC_TOKEN_FILE"


def _token() -> str:
    inline = os.environ.get(TOKEN_VARIABLE, "").strip()
    path = os.environ.get(TOKEN_FILE_VARIABLE, "").strip()
    if inline and path:
        raise UsageError(f"set {TOKEN_VARIABLE} or {TOKEN_FILE_VARIABLE}, not both")
    if path:
        try:
            inline = Path(path).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise UsageError(f"{TOKEN_FILE_VARIABLE}={path!r}: {err.strerror or err}") from None
    if len(inline) < 16:
        raise UsageError(
            f"{TOKEN_VARIABLE} (or {TOKEN_FILE_VARIABLE}) must hold a bearer token of at least "
            "16 characters: the codec server decrypts for whoever presents it"
        )
    return inline


def _cmd_server(args: argparse.Namespace) -> int:
    keyring = load_keyring()
    if keyring is None:
        raise UsageError(f"the codec server needs the keyring: set {KEYS_VARIABLE}")
    token = _token()
    try:
        server = CodecServer(
            codec=EncryptionCodec(keyring),
            token=token,
            host=args.host,
            port=args.port,
            origins=parse_origins(args.origins),
        )
    except OSError as err:
        raise UsageError(
            f"--host {args.host} --port {args.port}: cannot listen there: {err.strerror or err}"
        ) from None

    def on_signal(signum: int, _frame: object) -> None:
        threading.Thread(target=server.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"codec server on http://{args.host}:{server.port}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


def _cmd_keygen(args: argparse.Namespace) -> int:
    print(new_key(args.id))
    return 0


def register(sub: Subparsers) -> None:
    """Add ``fleet codec`` and its actions to the CLI."""
    codec = sub.add_parser("codec", help="payload encryption keys")
    actions = codec.add_subparsers(dest="codec_command", required=True, metavar="ACTION")
    p = actions.add_parser(
        "keygen",
        help=f"print a new KEY_ID:BASE64 key; put it first in {KEYS_VARIABLE} to rotate",
    )
    p.add_argument("--id", help="the key id (default: k<YYYYMMDD>)")
    p.set_defaults(func=_cmd_keygen)

    p = sub.add_parser(
        "codec-server",
        help="serve /encode and /decode for the Web UI and the CLI (bearer token required)",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8081, help="port (default 8081; 0: any free)")
    p.add_argument("--origins", default="", help="comma-separated UI origins allowed by CORS")
    p.set_defaults(func=_cmd_server)
