"""The fleet's Grafana dashboards, as code: ``make sync`` writes them into the Helm chart.

The dashboards are built with grafana-foundation-sdk (Grafana's typed dashboard builders) so
that every panel reads as one line of intent here, and the JSON stays consistent: one
datasource uid, sequential panel ids, the same variables and units everywhere. Queries
use only the SDK's metrics (``temporal_*``, default naming: no ``_total``, latencies in
milliseconds), the project's (``workerkit_*``), process metrics and the recording rules
in helm/temporal-fleet/files/prometheus/rules/. ``tests/deploy`` evaluates every query on a
real Prometheus.

The JSON is written once, to helm/temporal-fleet/files/grafana/dashboards/, by the one command
that writes every derived file (``python -m fleet_devtools.derived``, ``make sync``, which calls
:func:`render`): the chart ships it (Helm reads no file outside the chart) and the compose
stack's Grafana mounts the same folder. Each file's first key says it is generated.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableRefresh,
    VariableSort,
)
from workerkit import discover_queues, metrics

# The provisioned datasource (provisioning/datasources/prometheus.yml) has this uid.
DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
RATE = "$__rate_interval"
NS = 'namespace=~"$namespace"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    queries: tuple[Query, ...]
    description: str = ""
    width: int = 12


@dataclass(frozen=True)
class Section:
    title: str


def q(expr: str, legend: str) -> Query:
    return Query(expr, legend)


def legend_of(by: str) -> str:
    return " ".join(f"{{{{{label.strip()}}}}}" for label in by.split(","))


def rate(metric: str, by: str, sel: str) -> Query:
    """Per-second rate of a counter, summed by ``by``."""
    return Query(f"sum by ({by}) (rate({metric}{{{sel}}}[{RATE}]))", legend_of(by))


def quantile(level: float, metric: str, by: str, sel: str) -> Query:
    """A quantile of a histogram (``metric`` without ``_bucket``), by ``by``."""
    expr = (
        f"histogram_quantile({level}, sum by ({by}, le) (rate({metric}_bucket{{{sel}}}[{RATE}])))"
    )
    return Query(expr, f"p{round(level * 100)} {legend_of(by)}")


def quantiles(metric: str, by: str, sel: str) -> tuple[Query, ...]:
    """p50, p95 and p99 of a histogram."""
    return tuple(quantile(level, metric, by, sel) for level in (0.5, 0.95, 0.99))


def gauge(metric: str, by: str, sel: str, prefix: str = "") -> Query:
    return Query(f"sum by ({by}) ({metric}{{{sel}}})", f"{prefix}{legend_of(by)}")


# The SDK's metrics carry no build id: joined on the worker process and task queue to the
# gauge every worker exports per task queue it serves, each series gets its worker's build.
BUILD_INFO = "workerkit_worker_build_info"
BY_BUILD = f"on (job, instance, task_queue) group_left (build_id) {BUILD_INFO}"


# A rollout's state, from the worker process that recorded it last (the recording rules).
ROLLOUT_RAMP = "queue_build_id:workerkit_rollout_ramp_percent:latest"
ROLLOUT_ACTIVE = "queue_build_id:workerkit_rollout_active:latest"


def of_queue_workers(metric: str, sel: str) -> str:
    """A process metric of the worker processes that poll the queue (a process serving
    several queues, ``fleet worker --all``, shows on each one's dashboard)."""
    return (
        f'{metric}{{job="temporal-workers"}} '
        f"and on (instance) group by (instance) (temporal_num_pollers{{{sel}}})"
    )


def rate_per_build(metric: str, by: str, sel: str) -> Query:
    """Per-second rate of an SDK counter, attributed to the build that counted it."""
    return Query(f"sum by ({by}) (rate({metric}{{{sel}}}[{RATE}]) * {BY_BUILD})", legend_of(by))


def workers_per_build(by: str, sel: str) -> Query:
    """Worker processes serving the queue(s), by build: one build_info series each."""
    return Query(f"count by ({by}) ({BUILD_INFO}{{{sel}}})", legend_of(by))


def overview_panels(sel: str) -> list[Panel | Section]:
    qsel = 'task_queue=~"$queue"'
    hit = f"sum by (task_queue) (rate(temporal_sticky_cache_hit{{{sel}}}[{RATE}]))"
    miss = f"sum by (task_queue) (rate(temporal_sticky_cache_miss{{{sel}}}[{RATE}]))"
    tq = "{{task_queue}}"
    return [
        Section("Throughput"),
        Panel(
            "Workflows completed /s",
            "ops",
            (rate("temporal_workflow_completed", "task_queue", sel),),
        ),
        Panel("Workflows failed /s", "ops", (rate("temporal_workflow_failed", "task_queue", sel),)),
        Panel(
            "Workflow failure ratio (5m)",
            "percentunit",
            (q(f"task_queue:temporal_workflow_failure:ratio5m{{{sel}}}", tq),),
            "Alert TemporalWorkflowFailureRateHigh fires above 5% for 5 minutes.",
        ),
        Panel(
            "Activity failure ratio (5m)",
            "percentunit",
            (q(f"task_queue:temporal_activity_failure:ratio5m{{{sel}}}", tq),),
            "Failed attempts / executed attempts; Temporal retries the failures.",
        ),
        Section("Latency"),
        Panel(
            "Activity execution latency",
            "ms",
            quantiles("temporal_activity_execution_latency", "task_queue", sel),
            width=24,
        ),
        Panel(
            "Activity schedule-to-start p95 (the 'add workers' signal)",
            "ms",
            (q(f"task_queue:temporal_activity_schedule_to_start_ms:p95_5m{{{sel}}}", tq),),
            "How long activities wait for a worker. Alert above 2 s for 10 minutes.",
        ),
        Panel(
            "Workflow task schedule-to-start p95",
            "ms",
            (q(f"task_queue:temporal_workflow_task_schedule_to_start_ms:p95_5m{{{sel}}}", tq),),
        ),
        Section("Capacity"),
        Panel(
            "Task slots used",
            "short",
            (gauge("temporal_worker_task_slots_used", "task_queue, worker_type", sel),),
        ),
        Panel(
            "Task slots available",
            "short",
            (gauge("temporal_worker_task_slots_available", "task_queue, worker_type", sel),),
        ),
        Panel(
            "Slot utilisation",
            "percentunit",
            (
                q(
                    f"task_queue_worker_type:temporal_worker_task_slots:utilisation{{{sel}}}",
                    "{{task_queue}} {{worker_type}}",
                ),
            ),
            "used / (used + available). Alert at 100% for 5 minutes.",
        ),
        Panel("Pollers", "short", (gauge("temporal_num_pollers", "task_queue, poller_type", sel),)),
        Panel(
            "Workers up",
            "short",
            (
                q('sum(up{job="temporal-workers"})', "up"),
                q('count(up{job="temporal-workers"})', "scraped"),
            ),
            "Worker processes answering scrapes / all worker processes.",
        ),
        Panel(
            "Sticky cache hit rate",
            "percentunit",
            (q(f"{hit} / ({hit} + ({miss} or {hit} * 0))", tq),),
            "Workflow tasks served from a worker's cache, without replaying history.",
        ),
        Section("Workers"),
        Panel(
            "Worker memory (RSS)",
            "bytes",
            (q('process_resident_memory_bytes{job="temporal-workers"}', "{{instance}}"),),
        ),
        Panel(
            "Worker CPU",
            "percentunit",
            (
                q(
                    f'rate(process_cpu_seconds_total{{job="temporal-workers"}}[{RATE}])',
                    "{{instance}}",
                ),
            ),
        ),
        Section("Deployments"),
        Panel(
            "Workers per build",
            "short",
            (workers_per_build("task_queue, build_id", qsel),),
            "Worker processes by build: several builds of a queue run during a rainbow deploy, "
            "until the old ones drain.",
        ),
        Panel(
            "Workflow task failures per build (5m)",
            "short",
            (
                q(
                    "task_queue_build_id:temporal_workflow_task_execution_failed:increase5m"
                    f"{{{sel}}}",
                    "{{task_queue}} {{build_id}} {{failure_reason}}",
                ),
            ),
            "Alert TemporalWorkflowTaskFailures fires on any; NonDeterminismError (critical) "
            "means a deploy changed workflow code incompatibly.",
        ),
        Panel(
            "Rollouts: ramp of the build being rolled out",
            "percent",
            (
                q(
                    f"{ROLLOUT_RAMP}{{{qsel}}}",
                    "{{task_queue}} {{build_id}}",
                ),
            ),
            "fleet deploy rollout: the new build's share of new executions (100: current); "
            "back to 0 when it was rolled back (alert FleetRolloutRolledBack).",
            width=24,
        ),
        Section("Activities (project metrics)"),
        Panel(
            "Activity attempts /s by outcome",
            "ops",
            (
                rate(
                    "workerkit_activity_executions_total",
                    "task_queue, activity_type, outcome",
                    qsel,
                ),
            ),
            width=24,
        ),
        Panel(
            "Activity duration p95 by type",
            "s",
            (
                quantile(
                    0.95, "workerkit_activity_duration_seconds", "task_queue, activity_type", qsel
                ),
            ),
            width=24,
        ),
    ]


def queue_panels(sel: str) -> list[Panel | Section]:
    qsel = 'task_queue="$queue"'
    return [
        Section("Workflows"),
        Panel(
            "Completed /s by type",
            "ops",
            (rate("temporal_workflow_completed", "workflow_type", sel),),
        ),
        Panel(
            "Failed /s by type", "ops", (rate("temporal_workflow_failed", "workflow_type", sel),)
        ),
        Panel(
            "End-to-end latency by type",
            "ms",
            quantiles("temporal_workflow_endtoend_latency", "workflow_type", sel),
        ),
        Panel(
            "Workflow task execution latency",
            "ms",
            quantiles("temporal_workflow_task_execution_latency", "workflow_type", sel),
        ),
        Section("Activities"),
        Panel(
            "Execution latency by type",
            "ms",
            quantiles("temporal_activity_execution_latency", "activity_type", sel),
            width=24,
        ),
        Panel(
            "Failed attempts /s by type",
            "ops",
            (rate("temporal_activity_execution_failed", "activity_type", sel),),
        ),
        Panel(
            "Schedule-to-start latency",
            "ms",
            quantiles("temporal_activity_schedule_to_start_latency", "task_queue", sel),
        ),
        Section("Capacity"),
        Panel(
            "Slots used / available",
            "short",
            (
                gauge("temporal_worker_task_slots_used", "worker_type", sel, "used "),
                gauge("temporal_worker_task_slots_available", "worker_type", sel, "available "),
            ),
        ),
        Panel("Pollers", "short", (gauge("temporal_num_pollers", "poller_type", sel),)),
        Section("Worker processes"),
        Panel(
            "Memory (RSS) and container limit",
            "bytes",
            (
                q(of_queue_workers("process_resident_memory_bytes", sel), "{{instance}}"),
                q(of_queue_workers("workerkit_memory_limit_bytes", sel), "limit {{instance}}"),
            ),
            "Resident memory of each worker process serving the queue, and its container's "
            "limit where it has one: RSS that keeps rising after the first hour is a leak "
            "(alert TemporalWorkerMemoryRising); at the limit the process is killed "
            "(TemporalWorkerMemoryNearLimit warns at 90%).",
        ),
        Panel(
            "Threads",
            "short",
            (q(of_queue_workers("workerkit_process_threads", sel), "{{instance}}"),),
            "Threads of each worker process, the SDK core's included: flat once the worker "
            "has warmed up; a count that keeps rising is a leak of threads.",
        ),
        Section("Deployments"),
        Panel(
            "Workers per build",
            "short",
            (workers_per_build("build_id", qsel),),
            "Worker processes by build: several builds run during a rainbow deploy; an old "
            "build keeps serving its pinned executions until they drain.",
            width=8,
        ),
        Panel(
            "Workflow tasks completed /s per build",
            "ops",
            (rate_per_build("temporal_workflow_task_execution_latency_count", "build_id", sel),),
            "Workflow tasks each build's workers ran and reported to the server.",
            width=8,
        ),
        Panel(
            "Workflow task failures /s per build",
            "ops",
            (
                rate_per_build(
                    "temporal_workflow_task_execution_failed", "build_id, failure_reason", sel
                ),
            ),
            "NonDeterminismError: the build's code does not replay its histories (alert "
            "TemporalWorkflowTaskFailures, critical): roll the deploy back.",
            width=8,
        ),
        Panel(
            "Rollout: ramp and state",
            "short",
            (
                q(f"{ROLLOUT_RAMP}{{{qsel}}}", "ramp % {{build_id}}"),
                q(f"{ROLLOUT_ACTIVE}{{{qsel}}}", "running {{build_id}}"),
            ),
            "fleet deploy rollout: the new build's share of new executions (100: current), "
            "and 1 while the rollout runs; fleet deploy status shows its verdicts.",
        ),
        Panel(
            "Rollout verdicts (1h)",
            "short",
            (
                q(
                    f"sum by (verdict) (increase(workerkit_rollout_verdicts_total{{{qsel}}}[1h]))",
                    "{{verdict}}",
                ),
            ),
            "Steps judged: passed, failed (rolled back), extended (too few executions), held.",
        ),
        Section("Project metrics"),
        Panel(
            "Workflow runs closed /s by outcome",
            "ops",
            (rate("workerkit_workflow_executions_total", "workflow_type, outcome", qsel),),
        ),
        Panel(
            "Workflow duration p95 by type",
            "s",
            (quantile(0.95, "workerkit_workflow_duration_seconds", "workflow_type", qsel),),
        ),
        Panel(
            "Activity attempts /s by outcome",
            "ops",
            (rate("workerkit_activity_executions_total", "activity_type, outcome", qsel),),
        ),
        Panel(
            "Activity duration p95 by type",
            "s",
            (quantile(0.95, "workerkit_activity_duration_seconds", "activity_type", qsel),),
        ),
        *service_panels(sel),
    ]


# A declared metric's unit, as Grafana names it; a unit it does not know shows as a plain number.
_UNITS = {"seconds": "s", "milliseconds": "ms", "bytes": "bytes", "percent": "percent"}


def service_panels(sel: str) -> list[Panel | Section]:
    """A row per queue that declares metrics of its own (``Queue.metrics``), a panel each.

    The SDK's meter records them with ``namespace`` and ``task_queue``, so the dashboard's
    selection applies as it does to every other panel; a queue's row has data when that
    queue is selected.
    """
    items: list[Panel | Section] = []
    for name, queue in discover_queues().items():
        if not queue.metrics:
            continue
        items.append(Section(f"Service metrics: {name}"))
        for metric in queue.metrics:
            by = ", ".join(metric.labels) or "task_queue"
            unit = _UNITS.get(metric.unit, "short")
            if isinstance(metric, metrics.Counter):
                panel = Panel(f"{metric.name} /s", "ops", (rate(metric.name, by, sel),))
            elif isinstance(metric, metrics.Histogram):
                panel = Panel(metric.name, unit, quantiles(metric.name, by, sel))
            else:
                panel = Panel(metric.name, unit, (gauge(metric.name, by, sel),))
            items.append(dataclasses.replace(panel, description=metric.description))
    return items


def variable(name: str, query: str, *, multi: bool) -> QueryVariable:
    return (
        QueryVariable(name)
        .label(name.capitalize())
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )


def build(
    title: str, uid: str, description: str, items: list[Panel | Section], *, multi_queue: bool
) -> Dashboard:
    """A dashboard with the namespace and queue variables and ``items`` laid out in order."""
    dash = (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["temporal", "temporal-fleet"])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("utc")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(
            variable("namespace", "label_values(temporal_request, namespace)", multi=True)
        )
        .with_variable(
            variable(
                "queue",
                'label_values(temporal_num_pollers{namespace=~"$namespace"}, task_queue)',
                multi=multi_queue,
            )
        )
    )
    for panel_id, item in enumerate(items, start=1):
        if isinstance(item, Section):
            dash.with_row(Row(item.title).id(panel_id))
            continue
        panel = (
            Timeseries()
            .id(panel_id)
            .title(item.title)
            .description(item.description)
            .unit(item.unit)
            .span(item.width)
            .datasource(DATASOURCE)
        )
        for ref, query in zip("ABCDEFGH", item.queries, strict=False):
            target = Dataquery().ref_id(ref).datasource(DATASOURCE).expr(query.expr)
            panel.with_target(target.legend_format(query.legend))
        dash.with_panel(panel)
    return dash


def fleet_overview() -> Dashboard:
    return build(
        "Temporal fleet: overview",
        "temporal-fleet-overview",
        "Every queue side by side: is it keeping up, does it need workers, what fails.",
        overview_panels(f'{NS}, task_queue=~"$queue"'),
        multi_queue=True,
    )


def queue_detail() -> Dashboard:
    return build(
        "Temporal fleet: queue",
        "temporal-fleet-queue",
        "One queue in depth: its workflow and activity types, latencies, failures, capacity.",
        queue_panels(f'{NS}, task_queue="$queue"'),
        multi_queue=False,
    )


DASHBOARDS = {"fleet-overview.json": fleet_overview, "queue-detail.json": queue_detail}


# Sorted first among the keys (``_`` before lower case), so it is on the file's second line;
# Grafana keeps a dashboard's unknown keys and reads none of them.
GENERATED_KEY = "__generated"
GENERATED = (
    "Generated by `python -m fleet_devtools.derived` (make sync) from deploy/grafana/generate.py: "
    "do not edit"
)


def render() -> dict[str, str]:
    """Return each dashboard file name with its JSON text."""
    encoder = JSONEncoder(sort_keys=True, indent=2)
    texts = {}
    for name, build in DASHBOARDS.items():
        dashboard = json.loads(encoder.encode(build().build()))
        texts[name] = json.dumps({GENERATED_KEY: GENERATED, **dashboard}, sort_keys=True, indent=2)
    return {name: text + "\n" for name, text in texts.items()}
