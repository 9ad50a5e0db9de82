"""Running commands in the repository, and the error every part of the stack raises."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Failed(Exception):
    """What did not work; the message says what."""


def log(message: str) -> None:
    """Print a progress line on stderr, where compose's own output goes too."""
    print(f"\033[36m[compose]\033[0m {message}", file=sys.stderr, flush=True)


def run(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    capture: bool = True,
    check: bool = True,
    what: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in the repository.

    Args:
        cmd: The command and its arguments.
        env: Its whole environment (None: this process's).
        capture: Return its output, rather than let it through.
        check: Raise Failed when it exits non-zero, with its last lines when captured.
        what: How the error names it (default its first words).
    """
    try:
        done = subprocess.run(
            list(cmd), cwd=ROOT, env=env, text=True, capture_output=capture, check=False
        )
    except OSError as err:
        raise Failed(f"{cmd[0]}: {err.strerror or err}") from None
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout or "").strip().splitlines()[-5:] if capture else []
        raise Failed(
            f"{what or ' '.join(cmd[:4])} … exited {done.returncode}"
            + (f": {' | '.join(detail)}" if detail else "")
        )
    return done


def output(*cmd: str) -> str | None:
    """The output of ``cmd``, None when it fails (or cannot run)."""
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def succeeds(*cmd: str) -> bool:
    """Whether ``cmd`` exits 0 (its output discarded)."""
    return output(*cmd) is not None
