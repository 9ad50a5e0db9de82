"""Tracing: one trace from the client that starts a workflow, through it, to its activities.

Also checks that the worker's logs carry that trace id, so a log line leads to its trace.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client, WorkflowFailureError
from workerkit import WorkerSettings, build_worker, configure_tracing, tracing_interceptor
from workerkit._logging import _JsonFormatter

from orders.models import Address, LineItem, Order
from orders.queue import QUEUE


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
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    traced = await Client.connect(temporal_address, interceptors=[tracing_interceptor()])
    order = Order(
        order_id=f"trace-{uuid.uuid4().hex[:8]}",
        customer_id="c",
        items=[LineItem("sku-widget", 1, 100)],
        shipping_address=Address("T", "1 Main St", "Springfield", "1", "US"),
        payment_token="tok_declined",
    )
    tracer = trace.get_tracer("tests")
    async with build_worker(client, QUEUE, WorkerSettings.from_env({}, tuning=QUEUE.tuning)):
        with tracer.start_as_current_span("checkout") as root:
            handle = await traced.start_workflow(
                "OrderWorkflow", order, id=f"order-{order.order_id}", task_queue=QUEUE.task_queue
            )
            with pytest.raises(WorkflowFailureError):
                await handle.result()
    trace_id = root.get_span_context().trace_id

    names = {s.name for s in spans.get_finished_spans() if s.context.trace_id == trace_id}
    assert {
        "checkout",
        "StartWorkflow:OrderWorkflow",
        "RunWorkflow:OrderWorkflow",
        "StartActivity:reserve_inventory",
        "RunActivity:reserve_inventory",
        "RunActivity:charge_payment",
        "RunActivity:release_inventory",
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
