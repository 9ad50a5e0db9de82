"""Metrics: the SDK runtime's Prometheus exporter merged with the project's own registry.

The SDK's exporter keeps Temporal's default naming (``temporal_`` prefix, no ``_total``
suffix, millisecond histograms), so Temporal's published SDK dashboards work as-is.
It listens on a private loopback port; the worker's one public port serves its text
followed by the prometheus-client registry.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping, Sequence
from datetime import timedelta

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from workerkit._net import free_port
from workerkit._process_metrics import ProcessExtrasCollector

__all__ = [
    "ACTIVITY_DURATION",
    "ACTIVITY_EXECUTIONS",
    "ROLLOUT_ACTIVE",
    "ROLLOUT_ENDED",
    "ROLLOUT_FINISHED",
    "ROLLOUT_RAMP",
    "ROLLOUT_STEP",
    "ROLLOUT_UPDATED",
    "ROLLOUT_VERDICTS",
    "SIGNALS_DROPPED",
    "WORKER_BUILD_INFO",
    "WORKFLOW_DURATION",
    "WORKFLOW_EXECUTIONS",
    "SdkMetrics",
]

# `*_created` gauges double the series count and no dashboard or rule reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]
# Beside prometheus-client's process_* figures, as they are: one collector per process.
REGISTRY.register(ProcessExtrasCollector())

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)

ACTIVITY_EXECUTIONS = Counter(
    "workerkit_activity_executions",
    "Activity attempts finished by this worker, by outcome (completed, failed, cancelled).",
    ["task_queue", "activity_type", "outcome"],
)
ACTIVITY_DURATION = Histogram(
    "workerkit_activity_duration_seconds",
    "Wall time of one activity attempt in this worker.",
    ["task_queue", "activity_type", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
WORKFLOW_EXECUTIONS = Counter(
    "workerkit_workflow_executions",
    "Workflow runs closed by this worker, by outcome "
    "(completed, failed, cancelled, continued_as_new).",
    ["task_queue", "workflow_type", "outcome"],
)
WORKFLOW_DURATION = Histogram(
    "workerkit_workflow_duration_seconds",
    "Time from workflow run start to close, recorded by the worker that closed it.",
    ["task_queue", "workflow_type", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
SIGNALS_DROPPED = Counter(
    "workerkit_signals_dropped",
    "Signals dropped because their argument does not fit the signal's declared type.",
    ["task_queue", "signal"],
)

# The SDK's own metrics carry no build id; joined on (instance, task_queue) this gives every
# series its build, so dashboards can tell the builds of a rainbow deploy apart.
WORKER_BUILD_INFO = Gauge(
    "workerkit_worker_build_info",
    "Always 1: the Worker Deployment build this worker runs for a task queue "
    "(versioned=false: the server routes to it as an unversioned worker).",
    ["task_queue", "deployment", "build_id", "versioned"],
)

# A rollout's activities run in whichever process polls the operations queue first, so each
# process holds the state it last recorded: read the gauges of the series with the newest
# workerkit_rollout_updated_timestamp_seconds (the recording rules do), and sum the counters.
ROLLOUT_STEP = Gauge(
    "workerkit_rollout_step",
    "The step a rollout is at (0: the gate before traffic moves), as last recorded here.",
    ["queue", "task_queue", "build_id"],
)
ROLLOUT_RAMP = Gauge(
    "workerkit_rollout_ramp_percent",
    "The share of new executions routed to the build being rolled out (100: current).",
    ["queue", "task_queue", "build_id"],
)
ROLLOUT_ACTIVE = Gauge(
    "workerkit_rollout_active",
    "1 while the rollout runs, 0 once it ended, as last recorded here.",
    ["queue", "task_queue", "build_id"],
)
ROLLOUT_UPDATED = Gauge(
    "workerkit_rollout_updated_timestamp_seconds",
    "When this process last recorded the rollout's state (picks the freshest process).",
    ["queue", "task_queue", "build_id"],
)
ROLLOUT_VERDICTS = Counter(
    "workerkit_rollout_verdicts",
    "Verdicts on rollout steps (passed, failed, extended, insufficient, held, skipped).",
    ["queue", "task_queue", "verdict"],
)
# A gauge, not only the counter: an alert on a counter's increase misses a series whose first
# scrape already holds the increment (a process that ends a rollout it did not start).
ROLLOUT_ENDED = Gauge(
    "workerkit_rollout_ended_timestamp_seconds",
    "When a rollout of the build ended, by outcome, as recorded by this process.",
    ["queue", "task_queue", "build_id", "outcome"],
)
ROLLOUT_FINISHED = Counter(
    "workerkit_rollout_finished",
    "Rollouts ended, by outcome (promoted, rolled_back, refused, aborted, not_ready).",
    ["queue", "task_queue", "outcome"],
)


class SdkMetrics:
    """An SDK :class:`Runtime` exporting Prometheus metrics on a private loopback port."""

    def __init__(
        self,
        *,
        heartbeat_interval: timedelta,
        registry: CollectorRegistry = REGISTRY,
        histogram_buckets: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.port = free_port()
        self.registry = registry
        self.runtime = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=f"127.0.0.1:{self.port}",
                    # The services' own histograms (workerkit.metrics) in their declared
                    # buckets; the SDK's keep its defaults.
                    histogram_bucket_overrides=histogram_buckets or None,
                )
            ),
            # The worker heartbeats of the server's worker list (fleet status).
            worker_heartbeat_interval=heartbeat_interval,
        )

    def exposition(self) -> bytes:
        """Return SDK metrics followed by the project registry, in Prometheus text format."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                sdk = bytes(r.read())
        except OSError as err:
            sdk = f"# SDK metrics unavailable: {err}\n".encode()
        if sdk and not sdk.endswith(b"\n"):
            sdk += b"\n"
        return sdk + generate_latest(self.registry)
