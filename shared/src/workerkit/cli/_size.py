"""``fleet size``: pods, replica bounds and requests for a target rate, and the server's limits."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from workerkit._exceptions import ConfigurationError
from workerkit._registry import Queue, get_queue
from workerkit._sizing import (
    Figures,
    Plan,
    PodSize,
    ServerLimits,
    load_figures,
    parse_cpu,
    parse_memory,
    parse_rate,
    plan,
)
from workerkit.cli._common import Subparsers, UsageError, print_json

__all__ = ["register"]


# The server's instances and limits (ServerLimits, whose defaults are the server's): option,
# field, help.
_SERVER_OPTIONS = (
    ("--frontends", "frontends", "frontend instances of the server"),
    ("--matching-hosts", "matching_hosts", "matching instances of the server"),
    ("--history-hosts", "history_hosts", "history instances of the server"),
    ("--namespace-rps", "namespace_rps", "the server's frontend.namespaceRPS (per frontend)"),
    (
        "--global-namespace-rps",
        "global_namespace_rps",
        "the server's frontend.globalNamespaceRPS (whole cluster), 0 unset",
    ),
    (
        "--namespace-polls",
        "namespace_long_polls",
        "the server's frontend.namespaceCount (long polls, per frontend)",
    ),
    ("--frontend-rps", "frontend_rps", "the server's frontend.rps (per frontend)"),
    ("--matching-rps", "matching_rps", "the server's matching.rps (per matching host)"),
    ("--history-rps", "history_rps", "the server's history.rps (per history host)"),
    (
        "--history-db-qps",
        "history_persistence_qps",
        "the server's history.persistenceMaxQPS (per history host)",
    ),
    (
        "--matching-db-qps",
        "matching_persistence_qps",
        "the server's matching.persistenceMaxQPS (per matching host)",
    ),
    ("--partitions", "partitions", "the server's matching.numTaskqueueReadPartitions"),
    ("--keda-interval", "keda_interval_s", "KEDA's pollingInterval in seconds, 0 without KEDA"),
)


def _parsed(text: str, option: str, parse: Callable[[str], float], example: str) -> float:
    # Checked here, not by argparse, so bad input is one line (no usage banner).
    try:
        return parse(text)
    except ValueError:
        raise UsageError(f"{option} must be {example}, not {text!r}") from None


def _number(text: str, option: str, *, low: float, high: float = math.inf) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        bound = f"from {low:g} to {high:g}" if math.isfinite(high) else f"at least {low:g}"
        raise UsageError(f"{option} must be a number {bound}, not {text!r}")
    return value


def _count(text: str, option: str) -> int:
    value = _number(text, option, low=1)
    if value != int(value):
        raise UsageError(f"{option} must be a whole number, not {text!r}")
    return int(value)


def _package(queue: Queue) -> str:
    packages = [p for p in queue.code_packages() if p != "workerkit"]
    if not packages:
        raise ConfigurationError(f"queue {queue.name!r}: no package holds its code")
    return queue.name if queue.name in packages else packages[0]


def _plan(args: argparse.Namespace) -> tuple[Figures, Plan]:
    rate = _parsed(
        args.rate, "--rate", parse_rate, "workflows per second above 0 (e.g. 50/s, 3000/m)"
    )
    pod = PodSize(
        cpu=_parsed(args.pod_cpu, "--pod-cpu", parse_cpu, "a CPU amount above 0 (e.g. 1, 500m)"),
        memory_mib=_parsed(
            args.pod_memory, "--pod-memory", parse_memory, "a memory size above 0 (e.g. 512Mi)"
        ),
        cpu_target=_number(args.cpu_target, "--cpu-target", low=0.05, high=1),
        burst=_number(args.burst, "--burst", low=1),
    )
    defaults = ServerLimits()
    given: dict[str, Any] = {}
    for option, name, _ in _SERVER_OPTIONS:
        text = getattr(args, name)
        if isinstance(getattr(defaults, name), int):
            given[name] = _count(text, option)
        else:
            may_be_zero = name in ("keda_interval_s", "global_namespace_rps")
            given[name] = _number(text, option, low=0 if may_be_zero else 1)
    server = ServerLimits(**given)
    queues = _count(args.queues, "--queues")
    queue = get_queue(args.queue)
    figures = load_figures(_package(queue), queue.name)
    tuning = queue.tuning
    return figures, plan(
        figures,
        rate,
        pod=pod,
        server=server,
        activity_slots=tuning.max_concurrent_activities,
        workflow_task_slots=tuning.max_concurrent_workflow_tasks,
        pollers=tuning.max_pollers,
        queues=queues,
        activity_task_rate=queue.rate_limits.activity_tasks,
    )


def _json(figures: Figures, p: Plan) -> dict[str, Any]:
    binding = p.binding
    return {
        "queue": p.queue,
        "rate": p.rate,
        "queues": p.queues,
        "figures": {
            "measured_on": figures.measured_on,
            "machine": figures.machine,
            "cpu_s_per_workflow": figures.cpu_s_per_workflow,
            "rss_mib_load": figures.rss_mib_load,
            "frontend_requests_per_workflow": figures.frontend_requests_per_workflow,
        },
        "cpu_cores": round(p.cpu_cores, 4),
        "pods": {"for_cpu": p.pods_for_cpu, "for_activity_slots": p.pods_for_slots},
        "replicas": {"min": p.min_replicas, "max": p.max_replicas},
        "resources": {
            "requests": {
                "cpu": f"{p.cpu_request_millicores}m",
                "memory": f"{p.memory_request_mib}Mi",
            },
            "limits": {"memory": f"{p.memory_limit_mib}Mi"},
        },
        "worker": {
            "activity_slots": p.activity_slots,
            "activity_slots_busy_per_pod": round(p.activity_slots_busy, 2),
            "workflow_task_slots": p.workflow_task_slots,
            "pollers": p.pollers,
        },
        "server_requests_per_s": {
            "frontend": round(p.frontend_rps, 2),
            "matching": round(p.matching_rps, 2),
            "history": round(p.history_rps, 2),
        },
        "limits": [
            {
                "name": limit.name,
                "scope": limit.scope,
                "capacity": limit.capacity,
                "use": round(limit.use, 2),
                "unit": limit.unit,
                "binds_at": None if limit.binds_at is None else round(limit.binds_at, 2),
            }
            for limit in p.limits
        ],
        "binding": None if binding is None else binding.name,
        "notes": p.notes,
    }


def _print(figures: Figures, p: Plan) -> None:
    many = f" (x{p.queues} queues like it in the namespace)" if p.queues > 1 else ""
    print(f"{p.queue} at {p.rate:g} workflows/s{many}")
    print(
        f"  measured      {figures.measured_on or 'undated'}: "
        f"{1000 * figures.cpu_s_per_workflow:.1f} ms CPU and "
        f"{figures.frontend_requests_per_workflow:g} frontend requests per workflow, "
        f"{figures.rss_mib_load:.0f} MiB RSS per worker under load"
    )
    print(
        f"  pods          {p.min_replicas} ({p.cpu_cores:.2f} cores at {p.pod.cpu_target:.0%} of "
        f"{p.pod.cpu:g} CPU: {p.pods_for_cpu}; activity slots: {p.pods_for_slots})"
    )
    print(f"  replicas      min {p.min_replicas}, max {p.max_replicas}")
    print(
        f"  resources     requests cpu {p.cpu_request_millicores}m, "
        f"memory {p.memory_request_mib}Mi; limits memory {p.memory_limit_mib}Mi"
    )
    print(
        f"  worker        activity slots {p.activity_slots} ({p.activity_slots_busy:.1f} busy per "
        f"pod), workflow task slots {p.workflow_task_slots}, pollers {p.pollers}"
    )
    print(
        f"  server        frontend {p.frontend_rps:.1f} req/s, matching {p.matching_rps:.1f} "
        f"req/s, history {p.history_rps:.1f} req/s (this queue)"
    )
    print("  server limits, in the order they bind:")
    for limit in p.limits:
        binds = "-" if limit.binds_at is None else f"{limit.binds_at:.4g} workflows/s"
        print(
            f"    {limit.name:<36} {limit.capacity:>8g} {limit.unit:<10} "
            f"uses {limit.share:>6.1%}  binds at {binds}"
        )
    for note in p.notes:
        print(f"  note: {note}")


def _cmd_size(args: argparse.Namespace) -> int:
    figures, p = _plan(args)
    if args.json:
        print_json(_json(figures, p))
    else:
        _print(figures, p)
    return 0


def register(sub: Subparsers) -> None:
    """Add ``fleet size`` to the CLI."""
    help = "pods, replica bounds and requests for a rate of workflows, and the server limits"
    p = sub.add_parser(
        "size",
        help=help,
        description="Size a queue's workers for a target rate from its measured figures "
        "(make capacity), and list the Temporal server's limits by the rate at which each "
        "binds. No server is needed.",
    )
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument(
        "--rate", required=True, help="workflows started per second: 50/s, 3000/m, 1e5/h"
    )
    p.add_argument(
        "--pod-cpu", metavar="CPU", default="1", help="CPU of one worker pod (default 1; or 500m)"
    )
    p.add_argument(
        "--pod-memory", metavar="SIZE", default="512Mi", help="memory of one pod (default 512Mi)"
    )
    p.add_argument(
        "--cpu-target", metavar="F", default="0.7", help="target CPU use of a pod (default 0.7)"
    )
    p.add_argument("--burst", metavar="F", default="2", help="maxReplicas over minReplicas: 2")
    p.add_argument(
        "--queues", metavar="N", default="1", help="queues like this one in the namespace: 1"
    )
    defaults = ServerLimits()
    for option, name, what in _SERVER_OPTIONS:
        default = f"{getattr(defaults, name):g}"
        p.add_argument(option, dest=name, metavar="N", default=default, help=f"{what}: {default}")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_size)
