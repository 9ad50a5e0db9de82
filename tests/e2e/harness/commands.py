"""Running commands in the repository, waiting for conditions, reading HTTP JSON."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from compose_stack.process import Failed as StackFailed

ROOT = Path(__file__).resolve().parents[3]
# The run's logs and files (dockerd's log, compose output, changed sources, secrets).
STATE = ROOT / ".data" / "e2e"


class Failed(StackFailed):
    """A check that does not hold."""


def say(text: str) -> None:
    """Print a line of the run's report at once (make e2e shows it as it goes)."""
    print(text, flush=True)


def run(
    *cmd: str,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 600,
    quiet: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in the repository.

    Args:
        cmd: The command and its arguments.
        env: Variables over this process's environment.
        check: Raise Failed, with its output, when it exits non-zero.
        timeout: Seconds before it is killed (subprocess.TimeoutExpired).
        quiet: Capture its output rather than let it through.
    """
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=quiet,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        output = ((proc.stdout or "") + (proc.stderr or ""))[-4000:]
        raise Failed(f"`{shlex.join(cmd)}` exited {proc.returncode}\n{output}")
    return proc


def ok(*cmd: str) -> bool:
    """Whether ``cmd`` exits 0 within a minute."""
    try:
        return run(*cmd, check=False, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def git(*args: str) -> str:
    """The output of git ARGS, empty when it fails."""
    try:
        return run("git", *args, check=False).stdout.strip()
    except OSError:
        return ""


def wait_for(what: str, probe: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    """Call ``probe`` until it returns something truthy, and return that.

    Raises:
        Failed: Not within ``timeout`` seconds (naming ``what`` and the last value).
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise Failed(f"{what}: not within {timeout:.0f}s (last: {last!r})")


def http_json(url: str) -> Any:
    """GET ``url``'s JSON document."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def http_status(url: str) -> int:
    """GET ``url``'s status code (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0
