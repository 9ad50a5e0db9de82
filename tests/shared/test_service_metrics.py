"""``workerkit.metrics``: what a declaration must be, and a recording that breaks it."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import VersioningBehavior
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from workerkit import ConfigurationError, Queue, metrics

from support import free_port, in_process_worker

STEPS = metrics.Counter("meter_steps_total", "Steps.", labels=("kind",))
SIZE = metrics.Histogram("meter_size_bytes", "Sizes.", unit="bytes", buckets=(10.0, 100.0))
LEVEL = metrics.Gauge("meter_level", "Level.")
PINNED = VersioningBehavior.PINNED


@activity.defn
async def measure(size: int) -> int:
    SIZE.record(size)
    SIZE.record(size, extra="no")  # an undeclared label: dropped, the activity goes on
    return size


@workflow.defn(sandboxed=False)
class MeteredWorkflow:
    @workflow.run
    async def run(self, size: int) -> int:
        for _ in range(3):
            STEPS.add()  # no "kind": dropped three times, logged once
        STEPS.add(-1, kind="x")
        LEVEL.set(size)
        return await workflow.execute_activity(
            measure, size, start_to_close_timeout=timedelta(seconds=10)
        )


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda: metrics.Counter("meter_steps", "d"), "a counter's name ends in _total"),
        (lambda: metrics.Gauge("Meter-level", "d"), "a name is lower-case letters"),
        (lambda: metrics.Gauge("meter_x", "d", labels=("task_queue",)), "set by the SDK"),
        (lambda: metrics.Gauge("meter_x", "d", labels=("a", "a")), "a label is listed twice"),
        (lambda: metrics.Gauge("meter_x", "d", labels=("a-b",)), "label 'a-b' is not a valid name"),
        (lambda: metrics.Histogram("meter_x", "d", buckets=(5.0, 1.0)), "ascending"),
    ],
)
def test_a_malformed_declaration_names_its_problem(build: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        build()  # type: ignore[operator]


def test_a_queue_refuses_metrics_of_another_name_or_twice() -> None:
    with pytest.raises(ConfigurationError, match="must start with the queue's name: other_"):
        Queue(name="other", workflows=[MeteredWorkflow], versioning=PINNED, metrics=[STEPS])
    with pytest.raises(ConfigurationError, match="'meter_level' is declared twice"):
        Queue(name="meter", workflows=[MeteredWorkflow], versioning=PINNED, metrics=[LEVEL, LEVEL])
    with pytest.raises(ConfigurationError, match=r"is not a workerkit\.metrics"):
        Queue(name="meter", workflows=[MeteredWorkflow], versioning=PINNED, metrics=["meter_level"])  # type: ignore[list-item]


async def test_a_recording_that_breaks_its_declaration_is_dropped_and_logged_once(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    queue = Queue(
        name=f"meter{uuid.uuid4().hex[:8]}",
        workflows=[MeteredWorkflow],
        activities=[measure],
        versioning=PINNED,
    )
    caplog.set_level(logging.ERROR, logger="workerkit.metrics")
    async with in_process_worker(client, queue, lambda: [measure]):
        result = await client.execute_workflow(
            MeteredWorkflow.run, 42, id=f"meter-{uuid.uuid4()}", task_queue=queue.task_queue
        )
    assert result == 42
    errors = [r.getMessage() for r in caplog.records if r.name == "workerkit.metrics"]
    assert (
        errors.count("metric meter_steps_total not recorded: labels: missing ['kind'], unknown []")
        == 1
    )
    assert "metric meter_steps_total not recorded: a counter cannot go down" in errors
    assert "metric meter_size_bytes not recorded: labels: missing [], unknown ['extra']" in errors
    LEVEL.set(1)
    assert caplog.records[-1].getMessage() == (
        "metric meter_level not recorded: recorded outside a workflow or an activity"
    )


def test_a_value_the_sdks_meter_refuses_is_dropped_and_logged(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real SDK meter exporting to Prometheus, as a worker's; only the lookup of the running
    # workflow's or activity's meter is replaced.
    runtime = Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{free_port()}"))
    )
    monkeypatch.setattr(metrics.Metric, "_meter", lambda self: runtime.metric_meter)
    caplog.set_level(logging.ERROR, logger="workerkit.metrics")
    STEPS.add(2.5, kind="x")  # type: ignore[arg-type]  # not a whole number
    LEVEL.set(-1)  # the SDK's gauges hold no negative value
    SIZE.record(-3)
    STEPS.add(1, kind="x")  # a good one goes through
    refused = [
        r.getMessage() for r in caplog.records if "the SDK refused the value" in r.getMessage()
    ]
    assert {m.split(" not recorded")[0] for m in refused} == {
        "metric meter_steps_total",
        "metric meter_level",
        "metric meter_size_bytes",
    }, refused
