"""Generate the fleet's Grafana dashboards: ``make dashboards`` writes deploy/grafana/dashboards/.

The dashboards are built with grafana-foundation-sdk (Grafana's typed dashboard builders) so
that every panel reads as one line of intent here, and the JSON stays consistent: one
datasource uid, sequential panel ids, the same variables and units everywhere. Queries
use only the SDK's metrics (``temporal_*``, default naming: no ``_total``, latencies in
milliseconds), the project's (``workerkit_*``), process metrics and the recording rules
in deploy/prometheus/rules/. ``tests/deploy`` evaluates every query on a real Prometheus.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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

OUT = Path(__file__).parent / "dashboards"
# The provisioned datasource (provisioning/datasources/prometheus.yml) has this uid.
DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
RATE = "$__rate_interval"
NS = 'namespace=~"$namespace"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


def quantiles(metric: str, by: str, selector: str) -> list[Query]:
    """p50, p95 and p99 of a histogram, grouped by ``by``."""
    return [
        Query(
            f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{selector}}}[{RATE}])))",
            f"p{int(q * 100)} {{{{{by}}}}}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


def rate(metric: str, by: str, selector: str) -> Query:
    legend = " ".join(f"{{{{{label.strip()}}}}}" for label in by.split(","))
    return Query(f"sum by ({by}) (rate({metric}{{{selector}}}[{RATE}]))", legend)


class Layout:
    """Adds panels with sequential ids to a dashboard."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self._ids: Iterator[int] = itertools.count(1)

    def row(self, title: str) -> None:
        self.dashboard.with_row(Row(title).id(next(self._ids)))

    def panel(
        self, title: str, unit: str, queries: list[Query], *, description: str = "",
        width: int = 12,
    ) -> None:
        panel = (
            Timeseries()
            .id(next(self._ids))
            .title(title)
            .description(description)
            .unit(unit)
            .span(width)
            .datasource(DATASOURCE)
        )
        for ref, query in zip("ABCDEFGH", queries, strict=False):
            panel.with_target(
                Dataquery().ref_id(ref).datasource(DATASOURCE).expr(query.expr)
                .legend_format(query.legend)
            )
        self.dashboard.with_panel(panel)


def variable(name: str, query: str, *, multi: bool) -> QueryVariable:
    return (
        QueryVariable(name)
        .label(name.replace("_", " ").capitalize())
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )


def base(title: str, uid: str, description: str) -> Dashboard:
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["temporal", "temporal-fleet"])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("utc")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(variable("namespace", "label_values(temporal_request, namespace)",
                                multi=True))
    )


def fleet_overview() -> Dashboard:
    sel = f'{NS}, task_queue=~"$queue"'
    dash = base(
        "Temporal fleet: overview", "temporal-fleet-overview",
        "Every queue side by side: is it keeping up, does it need workers, what fails.",
    ).with_variable(variable(
        "queue", 'label_values(temporal_num_pollers{namespace=~"$namespace"}, task_queue)',
        multi=True,
    ))
    ui = Layout(dash)
    ui.row("Throughput")
    ui.panel("Workflows completed /s", "ops",
             [rate("temporal_workflow_completed", "task_queue", sel)])
    ui.panel("Workflows failed /s", "ops", [rate("temporal_workflow_failed", "task_queue", sel)])
    ui.panel("Workflow failure ratio (5m)", "percentunit", [Query(
        f'task_queue:temporal_workflow_failure:ratio5m{{{sel}}}', "{{task_queue}}")],
        description="Alert TemporalWorkflowFailureRateHigh fires above 5% for 5 minutes.")
    ui.panel("Activity failure ratio (5m)", "percentunit", [Query(
        f'task_queue:temporal_activity_failure:ratio5m{{{sel}}}', "{{task_queue}}")],
        description="Failed attempts / executed attempts; Temporal retries the failures.")
    ui.row("Latency")
    ui.panel("Activity execution latency", "ms",
             quantiles("temporal_activity_execution_latency", "task_queue", sel), width=24)
    ui.panel("Activity schedule-to-start p95 (the 'add workers' signal)", "ms", [Query(
        f'task_queue:temporal_activity_schedule_to_start_ms:p95_5m{{{sel}}}', "{{task_queue}}")],
        description="How long activities wait for a worker. Alert above 2 s for 10 minutes.")
    ui.panel("Workflow task schedule-to-start p95", "ms", [Query(
        f'task_queue:temporal_workflow_task_schedule_to_start_ms:p95_5m{{{sel}}}',
        "{{task_queue}}")])
    ui.row("Capacity")
    ui.panel("Task slots used", "short", [Query(
        f"sum by (task_queue, worker_type) (temporal_worker_task_slots_used{{{sel}}})",
        "{{task_queue}} {{worker_type}}")])
    ui.panel("Task slots available", "short", [Query(
        f"sum by (task_queue, worker_type) (temporal_worker_task_slots_available{{{sel}}})",
        "{{task_queue}} {{worker_type}}")])
    ui.panel("Slot utilisation", "percentunit", [Query(
        f"task_queue_worker_type:temporal_worker_task_slots:utilisation{{{sel}}}",
        "{{task_queue}} {{worker_type}}")],
        description="used / (used + available). Alert at 100% for 5 minutes.")
    ui.panel("Pollers", "short", [Query(
        f"sum by (task_queue, poller_type) (temporal_num_pollers{{{sel}}})",
        "{{task_queue}} {{poller_type}}")])
    ui.panel("Workers up", "short", [
        Query('sum(up{job="temporal-workers"})', "up"),
        Query('count(up{job="temporal-workers"})', "scraped"),
    ], description="Worker processes answering scrapes / all worker processes.")
    hit = f"sum by (task_queue) (rate(temporal_sticky_cache_hit{{{sel}}}[{RATE}]))"
    miss = f"sum by (task_queue) (rate(temporal_sticky_cache_miss{{{sel}}}[{RATE}]))"
    ui.panel("Sticky cache hit rate", "percentunit", [Query(
        f"{hit} / ({hit} + ({miss} or {hit} * 0))", "{{task_queue}}")],
        description="Workflow tasks served from a worker's cache, without replaying history.")
    ui.row("Workers")
    ui.panel("Worker memory (RSS)", "bytes", [Query(
        'process_resident_memory_bytes{job="temporal-workers"}', "{{instance}}")])
    ui.panel("Worker CPU", "percentunit", [Query(
        f'rate(process_cpu_seconds_total{{job="temporal-workers"}}[{RATE}])', "{{instance}}")])
    ui.row("Activities (project metrics)")
    qsel = 'task_queue=~"$queue"'
    ui.panel("Activity attempts /s by outcome", "ops", [rate(
        "workerkit_activity_executions_total", "task_queue, activity_type, outcome", qsel)],
        width=24)
    ui.panel("Activity duration p95 by type", "s", [Query(
        "histogram_quantile(0.95, sum by (task_queue, activity_type, le) "
        f"(rate(workerkit_activity_duration_seconds_bucket{{{qsel}}}[{RATE}])))",
        "{{task_queue}} {{activity_type}}")], width=24)
    return dash


def queue_detail() -> Dashboard:
    sel = f'{NS}, task_queue="$queue"'
    qsel = 'task_queue="$queue"'
    dash = base(
        "Temporal fleet: queue", "temporal-fleet-queue",
        "One queue in depth: its workflow and activity types, latencies, failures, capacity.",
    ).with_variable(variable(
        "queue", 'label_values(temporal_num_pollers{namespace=~"$namespace"}, task_queue)',
        multi=False,
    ))
    ui = Layout(dash)
    ui.row("Workflows")
    ui.panel("Completed /s by type", "ops",
             [rate("temporal_workflow_completed", "workflow_type", sel)])
    ui.panel("Failed /s by type", "ops", [rate("temporal_workflow_failed", "workflow_type", sel)])
    ui.panel("End-to-end latency by type", "ms",
             quantiles("temporal_workflow_endtoend_latency", "workflow_type", sel))
    ui.panel("Workflow task execution latency", "ms",
             quantiles("temporal_workflow_task_execution_latency", "workflow_type", sel))
    ui.row("Activities")
    ui.panel("Execution latency by type", "ms",
             quantiles("temporal_activity_execution_latency", "activity_type", sel), width=24)
    ui.panel("Failed attempts /s by type", "ops",
             [rate("temporal_activity_execution_failed", "activity_type", sel)])
    ui.panel("Schedule-to-start latency", "ms",
             quantiles("temporal_activity_schedule_to_start_latency", "task_queue", sel))
    ui.row("Capacity")
    ui.panel("Slots used / available", "short", [
        Query(f"sum by (worker_type) (temporal_worker_task_slots_used{{{sel}}})",
              "used {{worker_type}}"),
        Query(f"sum by (worker_type) (temporal_worker_task_slots_available{{{sel}}})",
              "available {{worker_type}}"),
    ])
    ui.panel("Pollers", "short", [Query(
        f"sum by (poller_type) (temporal_num_pollers{{{sel}}})", "{{poller_type}}")])
    ui.row("Project metrics")
    ui.panel("Workflow runs closed /s by outcome", "ops", [rate(
        "workerkit_workflow_executions_total", "workflow_type, outcome", qsel)])
    ui.panel("Workflow duration p95 by type", "s", [Query(
        "histogram_quantile(0.95, sum by (workflow_type, le) "
        f"(rate(workerkit_workflow_duration_seconds_bucket{{{qsel}}}[{RATE}])))",
        "{{workflow_type}}")])
    ui.panel("Activity attempts /s by outcome", "ops", [rate(
        "workerkit_activity_executions_total", "activity_type, outcome", qsel)])
    ui.panel("Activity duration p95 by type", "s", [Query(
        "histogram_quantile(0.95, sum by (activity_type, le) "
        f"(rate(workerkit_activity_duration_seconds_bucket{{{qsel}}}[{RATE}])))",
        "{{activity_type}}")])
    return dash


DASHBOARDS = {"fleet-overview.json": fleet_overview, "queue-detail.json": queue_detail}


def render() -> dict[str, str]:
    """Return each dashboard file name with its JSON text."""
    encoder = JSONEncoder(sort_keys=True, indent=2)
    return {name: encoder.encode(build().build()) + "\n" for name, build in DASHBOARDS.items()}


def main() -> int:
    """Write the dashboards; with ``--check``, exit 1 if the committed files differ."""
    check = "--check" in sys.argv[1:]
    stale = []
    for name, text in render().items():
        path = OUT / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale dashboards: {', '.join(stale)}: run `make dashboards`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
