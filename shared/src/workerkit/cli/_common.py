"""What every command shares: JSON arguments and output, usage errors, a connected client,
and the options declared once for every command that takes them."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import uvloop
from temporalio.client import (
    Client,
)
from workerkit._connection import connect
from workerkit._env import parse_duration
from workerkit._errors import ConfigurationError
from workerkit._tracing import configure_tracing

_T = TypeVar("_T")
# What each command module's register() adds its commands to.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_connect_timeout(parser: argparse.ArgumentParser, default: str = "10s") -> None:
    """Add ``--connect-timeout`` (read by :func:`_with_client`) to a command's parser."""
    parser.add_argument("--connect-timeout", default=default, help="give up connecting after this")


def client_command(sub: Subparsers, name: str, help: str) -> argparse.ArgumentParser:
    """Add a command that connects to the server: its ``help`` is also its description."""
    parser = sub.add_parser(name, help=help, description=help)
    add_connect_timeout(parser)
    return parser


class _UsageError(ConfigurationError):
    """Bad command-line input."""


def _duration(text: str, option: str) -> float:
    """Seconds of a duration option, or a usage error naming it."""
    try:
        return parse_duration(text).total_seconds()
    except ValueError:
        raise _UsageError(f"{option} {text!r} is not a duration (e.g. 30s, 5m)") from None


def _json_arg(text: str, what: str) -> Any:
    """Parse one JSON argument: given inline, as ``@path`` (a file) or ``-`` (stdin)."""
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            reason = getattr(err, "strerror", None) or str(err)
            raise _UsageError(f"{what}: cannot read {text[1:]}: {reason}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise _UsageError(
            f"{what} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:
        bad = err.object[err.start : err.end].encode("unicode_escape").decode()
        raise _UsageError(f"{what} holds a lone surrogate ({bad}): not valid Unicode") from None
    return value


def _json_args(raw: Sequence[str]) -> list[Any]:
    return [_json_arg(text, f"argument {i + 1}") for i, text in enumerate(raw)]


def _to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def _print_json(value: Any) -> None:
    print(json.dumps(value, default=_to_jsonable, indent=2, sort_keys=True))


def _with_client(args: argparse.Namespace, body: Callable[[Client], Awaitable[_T]]) -> _T:
    try:
        timeout = parse_duration(args.connect_timeout)
    except ValueError:
        raise _UsageError(
            f"--connect-timeout {args.connect_timeout!r} is not a duration (e.g. 10s, 1m)"
        ) from None

    async def go() -> _T:
        client = await connect(timeout=timeout)  # the plugin adds tracing
        return await body(client)

    provider = configure_tracing()
    try:
        return uvloop.run(go())
    finally:
        if provider is not None:
            provider.shutdown()
