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
from workerkit._env_settings import parse_duration
from workerkit._exceptions import ConfigurationError
from workerkit._tracing import configure_tracing

__all__ = [
    "Subparsers",
    "UsageError",
    "add_connect_timeout",
    "client_command",
    "duration_option",
    "json_arg",
    "json_args",
    "print_json",
    "to_jsonable",
    "with_client",
]

_T = TypeVar("_T")
# What each command module's register() adds its commands to.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_connect_timeout(parser: argparse.ArgumentParser, default: str = "10s") -> None:
    """Add ``--connect-timeout`` (read by :func:`with_client`) to a command's parser."""
    parser.add_argument("--connect-timeout", default=default, help="give up connecting after this")


def client_command(sub: Subparsers, name: str, help: str) -> argparse.ArgumentParser:
    """Add a command that connects to the server: its ``help`` is also its description."""
    parser = sub.add_parser(name, help=help, description=help)
    add_connect_timeout(parser)
    return parser


class UsageError(ConfigurationError):
    """Bad command-line input."""


def duration_option(text: str, option: str) -> float:
    """Seconds of a duration option, or a usage error naming it."""
    try:
        return parse_duration(text).total_seconds()
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a duration (e.g. 30s, 5m)") from None


def json_arg(text: str, what: str) -> Any:
    """Parse one JSON argument: given inline, as ``@path`` (a file) or ``-`` (stdin)."""
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            reason = getattr(err, "strerror", None) or str(err)
            raise UsageError(f"{what}: cannot read {text[1:]}: {reason}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(
            f"{what} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:
        bad = err.object[err.start : err.end].encode("unicode_escape").decode()
        raise UsageError(f"{what} holds a lone surrogate ({bad}): not valid Unicode") from None
    return value


def json_args(raw: Sequence[str]) -> list[Any]:
    return [json_arg(text, f"argument {i + 1}") for i, text in enumerate(raw)]


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def print_json(value: Any) -> None:
    print(json.dumps(value, default=to_jsonable, indent=2, sort_keys=True))


def with_client(args: argparse.Namespace, body: Callable[[Client], Awaitable[_T]]) -> _T:
    try:
        timeout = parse_duration(args.connect_timeout)
    except ValueError:
        raise UsageError(
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
