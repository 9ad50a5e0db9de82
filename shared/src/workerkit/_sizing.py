"""Capacity planning: from a queue's measured figures and a target rate to pods and server load.

The figures come from ``make capacity`` (``bench/capacity.py``), stored in each queue's package
as ``capacity.json``: CPU seconds and resident memory of one worker process per workflow, the
server requests one workflow makes, and its tasks. :func:`plan` is pure arithmetic on them:

- **pods**: the CPU the target rate needs at ``cpu_target`` of each pod's CPU (a worker is one
  Python process, so it uses at most about one core however large the pod), or the activity
  slots it keeps busy (``Tuning.max_concurrent_activities`` per pod, at the same target),
  whichever asks for more; the autoscaler's bounds are that count and ``burst`` times it;
- **requests**: the pod's CPU (the HPA's utilisation base) and the measured peak RSS with
  ``memory_headroom`` on top;
- **the server**: the requests per second the queue's workflows make of the frontend (each
  counts against ``frontend.namespaceRPS``), of matching and of history, with the calls made by
  the clock (the autoscaler's ``DescribeTaskQueue``, workers' heartbeats), and for each server
  limit the rate at which it binds, the lowest first. ``queues`` plans that many queues like this
  one in the same namespace: the namespace and per host limits are shared, a task queue's own
  (its partitions, its declared rate limits) are not.

The server's defaults are those of Temporal's dynamic config (``common/dynamicconfig/
constants.go``); :class:`ServerLimits` names each one, to be overridden where a cluster sets it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from importlib import resources
from typing import Any

from workerkit._exceptions import ConfigurationError

__all__ = [
    "FIGURES_FILE",
    "OPS_WORKFLOW_POLLERS",
    "PROCESS_CPU_CEILING",
    "Figures",
    "Limit",
    "Plan",
    "PodSize",
    "ServerLimits",
    "load_figures",
    "parse_cpu",
    "parse_memory",
    "parse_rate",
    "plan",
]

FIGURES_FILE = "capacity.json"
# A worker is one Python process: its workflow and activity code hold the GIL, so it uses at
# most about one core (the SDK core's threads add a little beside it).
PROCESS_CPU_CEILING = 1.0
# Memory requests are rounded up to this many MiB.
MEMORY_STEP_MIB = 16
# How often a worker records its heartbeat in the server's worker list (the SDK's default,
# WORKER_HEARTBEAT_INTERVAL): one RecordWorkerHeartbeat per worker per interval.
HEARTBEAT_INTERVAL_S = 60.0
# Workflow task polls each worker holds open beside its queue's: the fleet operations worker's
# (WORKER_FLEET_OPERATIONS, on by default), the SDK's minimum of one sticky and one normal.
OPS_WORKFLOW_POLLERS = 2
# DescribeTaskQueue calls of one `fleet status` run per queue (workflow and activity backlog).
STATUS_DESCRIBES_PER_QUEUE = 2


@dataclass(frozen=True, kw_only=True)
class Figures:
    """One workflow of a queue, as measured (per workflow unless the name says otherwise)."""

    queue: str
    cpu_s_per_workflow: float
    rss_mib_rest: float
    rss_mib_load: float
    frontend_requests_per_workflow: float
    matching_requests_per_workflow: float = 0.0
    history_requests_per_workflow: float = 0.0
    workflow_tasks_per_workflow: float = 0.0
    activity_tasks_per_workflow: float = 0.0
    activity_slot_s_per_workflow: float = 0.0
    # Database calls made for the queue's namespace by history and by matching.
    history_persistence_per_workflow: float = 0.0
    matching_persistence_per_workflow: float = 0.0
    # Activity tasks that came through a poll; the others were dispatched eagerly.
    activity_polls_per_workflow: float = 0.0
    workload: str = ""
    measured_on: str = ""
    machine: str = ""
    command: str = ""

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, float) and not (math.isfinite(value) and value >= 0):
                raise ConfigurationError(
                    f"capacity figures of {self.queue!r}: {item.name} must be a number >= 0, "
                    f"not {value!r}"
                )
        if self.cpu_s_per_workflow <= 0:
            raise ConfigurationError(
                f"capacity figures of {self.queue!r}: cpu_s_per_workflow must be above 0"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Figures:
        """The figures in a ``capacity.json`` document (other keys are left out)."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, item in known.items():
            if name not in data:
                continue
            value = data[name]
            if item.type == "float" or item.type is float:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ConfigurationError(
                        f"capacity figures: {name} must be a number, not {value!r}"
                    )
                value = float(value)
            elif not isinstance(value, str):
                raise ConfigurationError(f"capacity figures: {name} must be text, not {value!r}")
            values[name] = value
        missing = [
            f.name
            for f in fields(cls)
            if f.name not in values and f.default is MISSING and f.default_factory is MISSING
        ]
        if missing:
            raise ConfigurationError(f"capacity figures: {', '.join(missing)} missing")
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class PodSize:
    """What one worker pod gets, and how the plan may fill it."""

    cpu: float = 1.0
    memory_mib: float = 512.0
    # Target average CPU use of a pod, of its CPU (the HPA's targetCPUUtilizationPercentage),
    # also used for activity slots.
    cpu_target: float = 0.7
    # Memory requested over the measured peak RSS.
    memory_headroom: float = 0.25
    # maxReplicas over minReplicas: room for bursts above the target rate.
    burst: float = 2.0

    def check(self) -> None:
        if not (math.isfinite(self.cpu) and self.cpu > 0):
            raise ConfigurationError(f"pod CPU must be above 0, not {self.cpu!r}")
        if not (math.isfinite(self.memory_mib) and self.memory_mib > 0):
            raise ConfigurationError(f"pod memory must be above 0, not {self.memory_mib!r}")
        if not 0 < self.cpu_target <= 1:
            raise ConfigurationError(f"CPU target must be above 0 and at most 1: {self.cpu_target}")
        if not self.memory_headroom >= 0:
            raise ConfigurationError(f"memory headroom must be >= 0: {self.memory_headroom}")
        if not self.burst >= 1:
            raise ConfigurationError(f"burst must be at least 1: {self.burst}")


@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    """The Temporal server's limits that bind a queue, with the server's defaults.

    Per-instance limits are multiplied by the instances of their service; a global one, when
    set (above 0), replaces the per-instance one, as the server does.
    """

    frontends: int = 1
    matching_hosts: int = 1
    history_hosts: int = 1
    # frontend.namespaceRPS: requests per second of one namespace, per frontend instance.
    namespace_rps: float = 2400
    # frontend.globalNamespaceRPS: the same for the whole cluster; 0: unset.
    global_namespace_rps: float = 0.0
    # frontend.rps: requests per second of every namespace together, per frontend instance.
    frontend_rps: float = 2400
    # frontend.namespaceCount: concurrent long polls of one namespace, per API, per frontend.
    namespace_long_polls: int = 1200
    # matching.rps: requests per second per matching host.
    matching_rps: float = 1200
    # history.rps: requests per second per history host.
    history_rps: float = 3000
    # history.persistenceMaxQPS and matching.persistenceMaxQPS: database calls per second per host.
    history_persistence_qps: float = 9000
    matching_persistence_qps: float = 3000
    # matching.numTaskqueueReadPartitions (and ...WritePartitions): partitions per task queue.
    partitions: int = 4
    # KEDA's pollingInterval (the chart's autoscaling.keda.pollingInterval): one
    # DescribeTaskQueue per queue per interval; 0: no KEDA.
    keda_interval_s: float = 15.0
    # `fleet status` runs per minute (a dashboard or a watch): DescribeTaskQueue per queue each.
    status_runs_per_min: float = 0.0

    def check(self) -> None:
        for name in ("frontends", "matching_hosts", "history_hosts", "partitions"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name.replace('_', ' ')} must be at least 1")
        for name in (
            "namespace_rps",
            "frontend_rps",
            "namespace_long_polls",
            "matching_rps",
            "history_rps",
            "history_persistence_qps",
            "matching_persistence_qps",
        ):
            if not getattr(self, name) > 0:
                raise ConfigurationError(f"{name.replace('_', ' ')} must be above 0")
        for name in ("global_namespace_rps", "keda_interval_s", "status_runs_per_min"):
            if not getattr(self, name) >= 0:
                raise ConfigurationError(f"{name.replace('_', ' ')} must be >= 0")

    @property
    def namespace_capacity(self) -> float:
        if self.global_namespace_rps > 0:
            return self.global_namespace_rps
        return self.namespace_rps * self.frontends


@dataclass(frozen=True)
class Limit:
    """One server limit: what it allows, what the plan uses of it, and where it binds.

    ``binds_at`` is the rate of workflows per second of this queue (with ``queues`` like it)
    at which the limit is reached; ``None`` when the workflows make no such request.
    """

    name: str
    scope: str
    capacity: float
    use: float
    unit: str
    binds_at: float | None

    @property
    def share(self) -> float:
        """The part of the limit the plan uses."""
        return self.use / self.capacity


@dataclass(frozen=True)
class Plan:
    """What a queue needs for a rate, and what it asks of the server."""

    queue: str
    rate: float
    queues: int
    pod: PodSize
    cpu_cores: float
    pods_for_cpu: int
    pods_for_slots: int
    min_replicas: int
    max_replicas: int
    cpu_request_millicores: int
    memory_request_mib: int
    memory_limit_mib: int
    activity_slots: int
    activity_slots_busy: float
    workflow_task_slots: int
    pollers: int
    frontend_rps: float
    matching_rps: float
    history_rps: float
    limits: list[Limit]
    notes: list[str] = field(default_factory=list)

    @property
    def binding(self) -> Limit | None:
        """The limit reached at the lowest rate."""
        bound = [limit for limit in self.limits if limit.binds_at is not None]
        return min(bound, key=lambda limit: limit.binds_at or 0.0, default=None)


def _max_replicas(min_replicas: int, burst: float) -> int:
    """The autoscaler's maxReplicas for ``min_replicas``: room for a burst, and at least one."""
    return max(min_replicas + 1, math.ceil(min_replicas * burst - 1e-9))


def plan(
    figures: Figures,
    rate: float,
    *,
    pod: PodSize | None = None,
    server: ServerLimits | None = None,
    activity_slots: int = 100,
    workflow_task_slots: int = 100,
    pollers: int = 5,
    queues: int = 1,
    activity_task_rate: float | None = None,
) -> Plan:
    """Size one queue for ``rate`` workflows per second.

    Args:
        figures: The queue's measured figures.
        rate: Workflows started per second.
        pod: The pod size and targets.
        server: The server's limits and instance counts.
        activity_slots, workflow_task_slots, pollers: The queue's tuning (per worker).
        queues: How many queues like this one share the namespace (and the cluster).
        activity_task_rate: The task queue's declared activity rate limit (tasks per second
            for every worker together), if any.

    Raises:
        ConfigurationError: An input is out of range (the message says which).
    """
    pod = pod or PodSize()
    server = server or ServerLimits()
    pod.check()
    server.check()
    if not (math.isfinite(rate) and rate > 0):
        raise ConfigurationError(
            f"the rate must be a number of workflows per second above 0: {rate!r}"
        )
    if queues < 1:
        raise ConfigurationError(f"queues must be at least 1, not {queues}")
    if min(activity_slots, workflow_task_slots, pollers) < 1:
        raise ConfigurationError("slots and pollers must be at least 1")
    notes: list[str] = []

    usable_cpu = min(pod.cpu, PROCESS_CPU_CEILING)
    if pod.cpu > PROCESS_CPU_CEILING:
        notes.append(
            f"a worker is one Python process: it uses about {PROCESS_CPU_CEILING:g} core of the "
            f"pod's {pod.cpu:g}; size pods at 1 CPU or less"
        )
    # What one pod serves at the targets, bounded by CPU and by activity slots.
    per_pod_cpu_rate = usable_cpu * pod.cpu_target / figures.cpu_s_per_workflow
    slot_s = figures.activity_slot_s_per_workflow
    per_pod_slot_rate = activity_slots * pod.cpu_target / slot_s if slot_s > 0 else math.inf
    per_pod_rate = min(per_pod_cpu_rate, per_pod_slot_rate)

    cpu_cores = rate * figures.cpu_s_per_workflow
    pods_for_cpu = math.ceil(rate / per_pod_cpu_rate - 1e-9)
    busy = rate * slot_s
    pods_for_slots = math.ceil(rate / per_pod_slot_rate - 1e-9) if slot_s > 0 else 0
    min_replicas = max(1, pods_for_cpu, pods_for_slots)
    max_replicas = _max_replicas(min_replicas, pod.burst)
    if pods_for_slots > pods_for_cpu:
        notes.append(
            f"activity slots, not CPU, set the pod count: {busy:.1f} activities run at once "
            f"against {activity_slots} slots per worker"
        )

    memory_request = _round_up(figures.rss_mib_load * (1 + pod.memory_headroom), MEMORY_STEP_MIB)
    memory_limit = max(int(pod.memory_mib), memory_request)
    if pod.memory_mib < memory_request:
        notes.append(
            f"the pod's memory ({pod.memory_mib:g} MiB) is below the measured peak RSS with "
            f"headroom ({memory_request} MiB): the limit is raised to it"
        )

    # Requests made by the clock, per second, for the whole namespace (`queues` queues).
    describe = 1 / server.keda_interval_s if server.keda_interval_s > 0 else 0.0
    describe += server.status_runs_per_min * STATUS_DESCRIBES_PER_QUEUE / 60
    clock_per_queue = describe + max_replicas / HEARTBEAT_INTERVAL_S
    # An activity runs eagerly (handed over with the workflow task's completion) only while the
    # worker has a free slot: plan as if every one came through a poll instead, which costs a
    # poll on the frontend, matching's add and dispatch, and history's start.
    polled = max(0.0, figures.activity_tasks_per_workflow - figures.activity_polls_per_workflow)
    frontend_per_wf = figures.frontend_requests_per_workflow + polled
    matching_per_wf = figures.matching_requests_per_workflow + 2 * polled
    history_per_wf = figures.history_requests_per_workflow + polled
    frontend = rate * frontend_per_wf + clock_per_queue
    matching = rate * matching_per_wf
    history = rate * history_per_wf

    def reached(
        name: str,
        scope: str,
        capacity: float,
        per_workflow: float,
        unit: str,
        *,
        fixed: float = 0.0,
        share: int = queues,
    ) -> Limit:
        """A limit ``share`` queues like this one use ``per_workflow`` of per workflow, plus
        ``fixed`` a second each, with the rate of this queue at which they reach it."""
        binds_at = None
        if per_workflow > 0:
            binds_at = max(0.0, (capacity / share - fixed) / per_workflow)
        return Limit(name, scope, capacity, share * (rate * per_workflow + fixed), unit, binds_at)

    global_ns = server.global_namespace_rps > 0
    limits = [
        reached(
            "frontend.globalNamespaceRPS" if global_ns else "frontend.namespaceRPS",
            "per namespace, whole cluster"
            if global_ns
            else f"per namespace, per frontend (x{server.frontends})",
            server.namespace_capacity,
            frontend_per_wf,
            "requests/s",
            fixed=clock_per_queue,
        ),
        reached(
            "frontend.rps",
            f"every namespace, per frontend (x{server.frontends})",
            server.frontend_rps * server.frontends,
            frontend_per_wf,
            "requests/s",
            fixed=clock_per_queue,
        ),
    ]
    # Every worker holds up to `pollers` workflow task polls open, and the operations worker's
    # (fewer activity task polls): the limit binds at a replica count. It is reached at the
    # rate whose minReplicas is the largest whose maxReplicas (the floors included) still fits.
    polls_capacity = server.namespace_long_polls * server.frontends
    polls_per_pod = pollers + OPS_WORKFLOW_POLLERS
    pods_allowed = math.floor(polls_capacity / (queues * polls_per_pod) + 1e-9)
    fitting_min = pods_allowed
    while fitting_min >= 1 and _max_replicas(fitting_min, pod.burst) > pods_allowed:
        fitting_min -= 1
    limits.append(
        Limit(
            "frontend.namespaceCount",
            f"concurrent long polls per namespace and API, per frontend (x{server.frontends})",
            polls_capacity,
            queues * max_replicas * polls_per_pod,
            "polls",
            max(fitting_min, 0) * per_pod_rate,
        )
    )
    task_queue_hosts = min(server.partitions, server.matching_hosts)
    limits += [
        reached(
            "matching.numTaskqueueReadPartitions",
            f"one task queue: {server.partitions} partitions on {task_queue_hosts} matching "
            f"host(s) x matching.rps",
            task_queue_hosts * server.matching_rps,
            matching_per_wf,
            "requests/s",
            share=1,
        ),
        reached(
            "matching.rps",
            f"every task queue, per matching host (x{server.matching_hosts})",
            server.matching_rps * server.matching_hosts,
            matching_per_wf,
            "requests/s",
        ),
        reached(
            "history.rps",
            f"every namespace, per history host (x{server.history_hosts})",
            server.history_rps * server.history_hosts,
            history_per_wf,
            "requests/s",
        ),
        reached(
            "history.persistenceMaxQPS",
            f"database calls, per history host (x{server.history_hosts})",
            server.history_persistence_qps * server.history_hosts,
            figures.history_persistence_per_workflow,
            "calls/s",
        ),
        reached(
            "matching.persistenceMaxQPS",
            f"database calls, per matching host (x{server.matching_hosts})",
            server.matching_persistence_qps * server.matching_hosts,
            figures.matching_persistence_per_workflow,
            "calls/s",
        ),
    ]
    if activity_task_rate is not None:
        limits.append(
            reached(
                "task queue activity rate limit",
                "the queue's declared RateLimits (fleet limits apply), every worker together",
                activity_task_rate,
                figures.activity_tasks_per_workflow,
                "tasks/s",
                share=1,
            )
        )
    limits.sort(key=lambda limit: math.inf if limit.binds_at is None else limit.binds_at)
    short = [lim for lim in limits if lim.binds_at is not None and lim.binds_at < rate]
    if short:
        listed = ", ".join(f"{lim.name} at {lim.binds_at:.4g}/s" for lim in short)
        notes.append(
            f"below the target rate, {listed}: raise them on the server or add instances "
            "(fleet size --help), or spread the queues over namespaces"
        )

    return Plan(
        queue=figures.queue,
        rate=rate,
        queues=queues,
        pod=pod,
        cpu_cores=cpu_cores,
        pods_for_cpu=pods_for_cpu,
        pods_for_slots=pods_for_slots,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        cpu_request_millicores=math.ceil(pod.cpu * 1000 - 1e-9),
        memory_request_mib=memory_request,
        memory_limit_mib=memory_limit,
        activity_slots=activity_slots,
        activity_slots_busy=busy / min_replicas,
        workflow_task_slots=workflow_task_slots,
        pollers=pollers,
        frontend_rps=frontend,
        matching_rps=matching,
        history_rps=history,
        limits=limits,
        notes=notes,
    )


def _round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step - 1e-9) * step)


def load_figures(package: str, queue: str) -> Figures:
    """The figures stored in ``package``'s ``capacity.json`` (``make capacity`` writes them).

    Raises:
        ConfigurationError: The queue has none, or they do not read.
    """
    try:
        text = resources.files(package).joinpath(FIGURES_FILE).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        raise ConfigurationError(
            f"queue {queue!r} has no measured figures ({FIGURES_FILE} in package {package}): "
            "make capacity measures them"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigurationError(f"{package}/{FIGURES_FILE} is not valid JSON: {err.msg}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{package}/{FIGURES_FILE} is not a JSON object")
    return Figures.from_mapping({"queue": queue, **data})


_RATE_UNITS = {"/s": 1.0, "/m": 1 / 60, "/min": 1 / 60, "/h": 1 / 3600}
_CPU_UNITS = {"m": 1 / 1000}
_MEMORY_UNITS = {
    "Ki": 1 / 1024,
    "Mi": 1.0,
    "Gi": 1024.0,
    "K": 1e3 / 2**20,
    "M": 1e6 / 2**20,
    "G": 1e9 / 2**20,
}


def _quantity(text: str, units: Mapping[str, float]) -> float:
    """A number above 0 with an optional unit suffix, scaled by the unit (ValueError if not)."""
    raw, factor = text.strip(), 1.0
    for unit in sorted(units, key=len, reverse=True):
        if raw.endswith(unit):
            raw, factor = raw[: -len(unit)], units[unit]
            break
    value = float(raw) * factor
    if not (math.isfinite(value) and value > 0):
        raise ValueError(text)
    return value


def parse_rate(text: str) -> float:
    """Workflows per second from ``50/s``, ``3000/m``, ``1e5/h`` or a bare number (per second).

    Raises:
        ValueError: Not a rate above 0.
    """
    return _quantity(text, _RATE_UNITS)


def parse_cpu(text: str) -> float:
    """Cores from a Kubernetes quantity (``500m``, ``1``, ``1.5``).

    Raises:
        ValueError: Not a CPU amount above 0.
    """
    return _quantity(text, _CPU_UNITS)


def parse_memory(text: str) -> float:
    """MiB from a Kubernetes quantity (``512Mi``, ``1Gi``, ``1G``) or a bare number of MiB.

    Raises:
        ValueError: Not a size above 0.
    """
    return _quantity(text, _MEMORY_UNITS)
