"""The process figures prometheus-client's own collector leaves out: threads, memory limit.

prometheus-client exports ``process_resident_memory_bytes``, CPU, open files and start time.
A leak shows as RSS that keeps rising, often with threads that keep rising, and a pod is
killed when RSS reaches its container's limit: so the worker also exports its thread count
(every thread, the SDK core's included, from ``/proc``) and the memory limit of its cgroup,
the one the container runtime or the kubelet enforces, when it has one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["ProcessExtrasCollector", "cgroup_dirs", "memory_limit_bytes", "thread_count"]

# cgroup v1 writes "no limit" as the largest page-aligned 64-bit value.
_V1_UNLIMITED = 2**62


def thread_count(proc: Path = Path("/proc/self")) -> int | None:
    """The process's threads (``Threads:`` of ``/proc/<pid>/status``), or ``None`` off Linux."""
    try:
        for line in (proc / "status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cgroup_dirs(proc: Path) -> Iterator[tuple[Path, Path, str]]:
    """Each mounted memory hierarchy holding the process: its mount point, the process's
    directory under it, and the name of its limit file."""
    paths: dict[str, str] = {}  # "v1" / "v2" -> the process's cgroup path in that hierarchy
    for line in (proc / "cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and not controllers:
            paths["v2"] = path
        elif "memory" in controllers.split(","):
            paths["v1"] = path
    for line in (proc / "mountinfo").read_text().splitlines():
        fields, _, fs = line.partition(" - ")
        root, mount_point = fields.split()[3:5]
        fstype, _, options = fs.split()[:3]
        if fstype == "cgroup2" and "v2" in paths:
            version, limit_file = "v2", "memory.max"
        elif fstype == "cgroup" and "memory" in options.split(",") and "v1" in paths:
            version, limit_file = "v1", "memory.limit_in_bytes"
        else:
            continue
        inside = os.path.relpath(paths[version], root)
        if inside.startswith(".."):  # the process's cgroup is not under this mount
            continue
        yield Path(mount_point), Path(mount_point) / inside, limit_file


def memory_limit_bytes(proc: Path = Path("/proc/self")) -> int | None:
    """The tightest memory limit on the process's cgroup and its ancestors, or ``None``.

    Reads cgroup v2 (``memory.max``) and v1 (``memory.limit_in_bytes``) through the
    process's own view of the mounts, so it finds the limit in a container, in a pod and in
    a cgroup of a host.
    """
    limits = []
    try:
        dirs = list(cgroup_dirs(proc))
    except (OSError, ValueError):
        return None
    for mount, directory, limit_file in dirs:
        while True:  # the process's cgroup, then each ancestor up to the mount's root
            try:
                raw = (directory / limit_file).read_text().strip()
            except OSError:
                raw = ""  # none at a hierarchy's root; "max" where unlimited (v2)
            if raw.isdigit() and int(raw) < _V1_UNLIMITED:
                limits.append(int(raw))
            if directory == mount:
                break
            directory = directory.parent
    return min(limits) if limits else None


_THREADS_HELP = "Threads of the worker process, the SDK core's included (from /proc)."
_LIMIT_HELP = "Memory limit of the worker's cgroup (its container's); absent when unlimited."


class ProcessExtrasCollector(Collector):
    """``workerkit_process_threads`` and ``workerkit_memory_limit_bytes``, read at scrape."""

    def describe(self) -> Iterator[Metric]:
        """Both families, whether or not this process has a limit (the metrics reference)."""
        yield GaugeMetricFamily("workerkit_process_threads", _THREADS_HELP)
        yield GaugeMetricFamily("workerkit_memory_limit_bytes", _LIMIT_HELP)

    def collect(self) -> Iterator[Metric]:
        threads = thread_count()
        if threads is not None:
            yield GaugeMetricFamily("workerkit_process_threads", _THREADS_HELP, value=threads)
        limit = memory_limit_bytes()
        if limit is not None:
            yield GaugeMetricFamily("workerkit_memory_limit_bytes", _LIMIT_HELP, value=limit)
