"""Tracing: one trace from the client that starts a workflow, through it, to its activities.

Also checks that the worker's logs carry that trace id, so a log line leads to its trace.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from workerkit import (
    WorkerSettings,
    activities_of,
    build_worker,
    configure_tracing,
    migrate,
    tracing_interceptor,
)
from workerkit._logging import _JsonFormatter

from support import workdir_database
from support.fixture_queue import (
    QUEUE,
    Approval,
    FixtureActivities,
    FixtureWorkflow,
    Ledger,
    new_parcel,
)


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(_JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def log_lines() -> Iterator[_Lines]:
    handler = _Lines()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)


async def test_client_workflow_and_activities_share_one_trace(
    spans: InMemorySpanExporter,
    log_lines: _Lines,
    client: Client,
    temporal_address: str,
    tmp_path: Path,
) -> None:
    # The fixture's ledger, in a SQLite file of the test's own. Its activities are bound here:
    # the queue's factory would define its settings class in this process (see its module).
    db = workdir_database(tmp_path)
    migrate(db, [QUEUE])
    ledger = Ledger(db)
    queue = dataclasses.replace(
        QUEUE,
        activities=lambda: activities_of(FixtureActivities(ledger, pack_seconds_per_unit=0)),
    )
    traced = await Client.connect(temporal_address, interceptors=[tracing_interceptor()])
    parcel = new_parcel("trace")
    tracer = trace.get_tracer("tests")
    async with build_worker(client, queue, WorkerSettings.from_env({}, tuning=queue.tuning)):
        with tracer.start_as_current_span("checkout") as root:
            handle = await traced.start_workflow(
                FixtureWorkflow.run,
                parcel,
                id=f"parcel-{parcel.parcel_id}",
                task_queue=QUEUE.task_queue,
            )
            await handle.signal(FixtureWorkflow.approve, Approval("trace"))
            assert (await handle.result()).tracking_number.startswith("trk-")
    db.dispose()
    trace_id = root.get_span_context().trace_id

    names = {s.name for s in spans.get_finished_spans() if s.context.trace_id == trace_id}
    assert {
        "checkout",
        "StartWorkflow:FixtureWorkflow",
        "RunWorkflow:FixtureWorkflow",
        "StartActivity:check",
        "RunActivity:check",
        "SignalWorkflow:approve",
        "HandleSignal:approve",
        "StartActivity:pack",
        "RunActivity:pack",
    } <= names, names

    completed = [
        line
        for line in log_lines.lines
        if str(line["msg"]).startswith("activity completed")
        and line.get("workflow_id") == handle.id
    ]
    assert completed, log_lines.lines
    for line in completed:
        assert line["trace_id"] == format(trace_id, "032x")
        assert {"run_id", "activity_type", "attempt", "task_queue"} <= line.keys()


def test_export_is_off_without_an_endpoint() -> None:
    assert configure_tracing({}) is None
    assert (
        configure_tracing({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"}) is None
    )
