"""A memory-limited cgroup for a test's subprocess, as a container runtime would make one.

It is a child of the test process's own memory cgroup, found the way the worker finds its
limit (through ``/proc/self/cgroup`` and the mounts). Creating one needs write access to the
cgroup filesystem (root, or a delegated subtree); where that is missing the test is skipped,
saying why.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import pytest
from workerkit._process_metrics import cgroup_dirs

__all__ = ["memory_cgroup", "remove_cgroup"]


def memory_cgroup(limit_bytes: int) -> Path:
    """A new cgroup limited to ``limit_bytes``; put a process in it by writing its pid to
    ``cgroup.procs`` (see :func:`support.start_worker`'s ``memory_limit``)."""
    problems = []
    for _mount, own, limit_file in cgroup_dirs(Path("/proc/self")):
        child = own / f"fleet-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            child.mkdir()
        except OSError as err:
            problems.append(f"{own}: {err.strerror}")
            continue
        try:
            (child / limit_file).write_text(str(limit_bytes))
        except OSError as err:  # e.g. v2 without the memory controller delegated
            problems.append(f"{child / limit_file}: {err.strerror}")
            remove_cgroup(child)
            continue
        return child
    pytest.skip(f"cannot create a memory-limited cgroup here: {'; '.join(problems) or 'none'}")


def remove_cgroup(path: Path) -> None:
    """Remove the cgroup once its processes have exited (the kernel refuses before)."""
    with contextlib.suppress(OSError):
        path.rmdir()
