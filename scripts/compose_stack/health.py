"""Waiting until the stack is healthy: every one-shot exited 0, every other container
running, and healthy where it has a health check (containers.py says which is which)."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .containers import ONE_SHOT, health_of, name_of, role_of
from .process import Failed, log, run
from .stack import Stack

DEFAULT_WAIT_TIMEOUT = 300


def waiting_on(containers: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """(the containers not ready yet, each as name(state), the one-shots that failed)."""
    pending: list[str] = []
    failed: list[str] = []
    for c in containers:
        name, status = name_of(c), str(c["State"]["Status"])
        if role_of(c) == ONE_SHOT:
            if status != "exited":
                pending.append(f"{name}({status})")
            elif int(c["State"]["ExitCode"]) != 0:
                failed.append(name)
        elif status != "running" or health_of(c) not in ("none", "healthy"):
            pending.append(f"{name}({status}/{health_of(c)})")
    return pending, failed


def wait(stack: Stack, timeout: int | None = None) -> None:
    """Wait until every container is healthy (every one-shot exited 0).

    Args:
        stack: The stack to watch.
        timeout: Seconds; default FLEET_WAIT_TIMEOUT (300).

    Raises:
        Failed: A one-shot failed, or a container is not ready in time (its last logs shown).
    """
    if timeout is None:
        value = stack.var("FLEET_WAIT_TIMEOUT", str(DEFAULT_WAIT_TIMEOUT))
        if not value.isdigit():
            raise Failed(f"FLEET_WAIT_TIMEOUT={value} is not a number of seconds")
        timeout = int(value)
    deadline = time.monotonic() + timeout
    while True:
        listed = stack.containers()
        if not listed:
            raise Failed(f"project {stack.project} has no containers")
        pending, failed = waiting_on(listed)
        if failed:
            for name in failed:
                _show_logs(stack, name, 30)
            raise Failed(f"failed: {' '.join(failed)}")
        if not pending:
            log("every container is healthy")
            return
        if time.monotonic() >= deadline:
            sys.stderr.write(stack.compose("ps", check=False).stdout)
            for line in pending:
                name = line.partition("(")[0]
                log(f"last logs of {name}:")
                _show_logs(stack, name, 20)
            raise Failed(f"not healthy after {timeout}s: {' '.join(pending)}")
        time.sleep(2)


def _show_logs(stack: Stack, container: str, tail: int) -> None:
    done = run(["docker", "logs", f"--tail={tail}", container], env=stack.env, check=False)
    sys.stderr.write(done.stdout + done.stderr)
