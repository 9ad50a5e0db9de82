"""The batch ingest workflow on a real Temporal server: fan-out, continue-as-new, failures."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker
from workerkit import ObservabilityInterceptor

from ingest.activities import IngestActivities
from ingest.client import start_batch
from ingest.ids import batch_workflow_id, chunk_workflow_id
from ingest.models import (
    BatchRequest,
    BatchResult,
    ChunkFailure,
    ChunkRequest,
    ChunkResult,
    ItemStatus,
    item_value,
)
from ingest.queue import QUEUE
from ingest.store import ChunkAttempt, IngestStore
from ingest.workflows import BatchIngestWorkflow, ChunkWorkflow

from support import RecordHistory

pytestmark = pytest.mark.usefixtures("ingest_worker")

CHILD_OPENED = EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
CHILD_CLOSED = {
    EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED,
}


def new_batch_id() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


async def events_of(handle: WorkflowHandle[Any, Any]) -> list[HistoryEvent]:
    return [e async for e in handle.fetch_history_events()]


def children_started(events: Iterable[HistoryEvent]) -> list[str]:
    """The ids of the child workflows a run started, in order."""
    return [
        e.start_child_workflow_execution_initiated_event_attributes.workflow_id
        for e in events
        if e.event_type == CHILD_OPENED
    ]


def max_children_in_flight(events: Iterable[HistoryEvent]) -> int:
    """The most children open at once according to the server's record of the run."""
    open_now = peak = 0
    for event in events:
        if event.event_type == CHILD_OPENED:
            open_now += 1
            peak = max(peak, open_now)
        elif event.event_type in CHILD_CLOSED:
            open_now -= 1
    return peak


def max_overlap(attempts: Iterable[ChunkAttempt]) -> int:
    """The most chunk activity attempts running at once, from the times the store logged."""
    edges: list[tuple[float, int]] = []
    for a in attempts:
        assert a.finished_at is not None, a
        edges += [(a.started_at, 1), (a.finished_at, -1)]
    running = peak = 0
    for _, step in sorted(edges):  # at a tie, a finish (-1) sorts before a start
        running += step
        peak = max(peak, running)
    return peak


async def failure_of(handle: WorkflowHandle[Any, Any]) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def test_fans_out_with_bounded_concurrency_and_aggregates(
    client: Client, store: IngestStore, record_history: RecordHistory
) -> None:
    invalid = {4, 17}
    request = BatchRequest(
        batch_id=new_batch_id(),
        item_count=30,
        chunk_size=4,  # 8 chunks, the last of 2 items
        max_concurrent_children=3,
        invalid_items=sorted(invalid),
    )
    launched = await start_batch(client, request)
    assert launched.started and launched.workflow_id == f"ingest-{request.batch_id}"
    result: BatchResult = await launched.handle.result()

    totals = result.totals
    assert (result.chunk_count, result.runs) == (8, 1)
    assert (totals.chunks_completed, totals.chunks_failed, totals.failed_items) == (8, 0, 0)
    assert (totals.accepted, totals.rejected, totals.duplicates) == (28, 2, 0)
    assert totals.value_total == sum(item_value(i) for i in range(30) if i not in invalid)

    # The server's record: at most 3 children open at once, and 3 were (it is not serial).
    events = await events_of(launched.handle)
    assert max_children_in_flight(events) == 3 == totals.max_in_flight
    assert children_started(events) == [f"ingest-{request.batch_id}-chunk-{i}" for i in range(8)]
    # The store's record: every item once, and never more than 3 chunks processing at once.
    items = store.items(request.batch_id)
    assert [r.item_index for r in items] == list(range(30))
    assert all(r.deliveries == 1 for r in items)
    assert {r.item_index for r in items if r.status == ItemStatus.REJECTED} == invalid
    attempts = store.attempts(request.batch_id)
    assert sorted(a.chunk_index for a in attempts) == list(range(8))
    assert max_overlap(attempts) <= 3

    again = await start_batch(client, request)
    assert not again.started and again.run_id == launched.run_id
    await record_history("ingest", "fan_out", launched.handle)

    chunk = client.get_workflow_handle_for(
        ChunkWorkflow.run, chunk_workflow_id(request.batch_id, 1)
    )
    chunk_result = await chunk.result()
    assert (chunk_result.accepted, chunk_result.rejected) == (3, 1)  # item 4 is invalid
    assert (chunk_result.attempt, chunk_result.resumed_from) == (1, 0)
    await record_history("ingest", "chunk", chunk)


async def test_continues_as_new_and_still_counts_every_item_once(
    client: Client, store: IngestStore, record_history: RecordHistory
) -> None:
    request = BatchRequest(
        batch_id=new_batch_id(),
        item_count=30,
        chunk_size=2,  # 15 chunks
        max_concurrent_children=3,
        chunks_per_run=4,  # runs of 4, 4, 4 and 3 chunks
    )
    launched = await start_batch(client, request)
    result: BatchResult = await launched.handle.result()  # follows the chain of runs

    # The original run continued as new; follow the chain to the last run.
    first_run = client.get_workflow_handle(launched.workflow_id, run_id=launched.run_id)
    assert (await first_run.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    runs: list[tuple[str, list[HistoryEvent]]] = []
    run_id: str | None = launched.run_id
    while run_id:
        events = await events_of(client.get_workflow_handle(launched.workflow_id, run_id=run_id))
        runs.append((run_id, events))
        last = events[-1]
        continued = last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        attrs = last.workflow_execution_continued_as_new_event_attributes
        run_id = attrs.new_execution_run_id if continued else None
    assert len(runs) == 4 == result.runs
    assert runs[-1][1][-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    # Each run started the next 4 chunks and kept its history small.
    for number, (_, events) in enumerate(runs):
        expected = range(4 * number, min(4 * number + 4, 15))
        assert children_started(events) == [
            chunk_workflow_id(request.batch_id, i) for i in expected
        ]
        assert max_children_in_flight(events) <= 3
        assert len(events) < 80, f"run {number + 1} has {len(events)} events"

    totals = result.totals
    assert (result.chunk_count, totals.chunks_completed, totals.chunks_failed) == (15, 15, 0)
    assert (totals.accepted, totals.rejected, totals.duplicates) == (30, 0, 0)
    assert totals.value_total == sum(item_value(i) for i in range(30))
    assert totals.max_in_flight == 3
    items = store.items(request.batch_id)
    assert [r.item_index for r in items] == list(range(30))
    assert all(r.deliveries == 1 for r in items)
    assert sorted(a.chunk_index for a in store.attempts(request.batch_id)) == list(range(15))

    latest = client.get_workflow_handle_for(BatchIngestWorkflow.run, launched.workflow_id)
    progress = await latest.query(BatchIngestWorkflow.progress)
    assert (progress.run, progress.next_chunk, progress.in_flight) == (4, 15, [])
    await record_history("ingest", "continued_first_run", first_run)
    await record_history(
        "ingest", "continued_last_run", client.get_workflow_handle(latest.id, run_id=runs[-1][0])
    )


async def test_a_failed_chunk_is_counted_and_the_batch_completes(
    client: Client, store: IngestStore, record_history: RecordHistory
) -> None:
    real = IngestActivities(store, seconds_per_item=0)

    @activity.defn(name="process_chunk")
    async def process_chunk(chunk: ChunkRequest) -> ChunkResult:
        if chunk.chunk_index == 1:
            raise ApplicationError(
                "source unreadable", type="SourceUnavailable", non_retryable=True
            )
        return await real.process_chunk(chunk)

    request = BatchRequest(
        batch_id=new_batch_id(), item_count=10, chunk_size=4, max_concurrent_children=2
    )
    task_queue = f"ingest-failing-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=list(QUEUE.workflows),
        activities=[process_chunk],
        interceptors=[ObservabilityInterceptor()],
    ):
        handle = await client.start_workflow(
            BatchIngestWorkflow.run,
            request,
            id=batch_workflow_id(request.batch_id),
            task_queue=task_queue,
        )
        result = await handle.result()
        chunk = client.get_workflow_handle(chunk_workflow_id(request.batch_id, 1))
        error = await failure_of(chunk)

    totals = result.totals
    assert (totals.chunks_completed, totals.chunks_failed) == (2, 1)
    assert (totals.accepted, totals.rejected, totals.failed_items) == (6, 0, 4)
    assert totals.failures == [ChunkFailure(1, 4, 4, "chunk 1 failed: source unreadable")]
    assert error.type == "ChunkFailed" and error.non_retryable
    failed = [
        e
        for e in await events_of(chunk)
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    assert len(failed) == 1, "a non-retryable failure must end the chunk on its first attempt"
    assert [r.item_index for r in store.items(request.batch_id)] == [0, 1, 2, 3, 8, 9]
    await record_history("ingest", "chunk_failed", handle)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"item_count": 0}, "the batch is empty"),
        ({"chunk_size": 0}, "chunk_size must be positive"),
        ({"max_concurrent_children": 0}, "max_concurrent_children must be from 1"),
        ({"chunks_per_run": -1}, "chunks_per_run must be positive"),
        ({"invalid_items": [3, 10]}, "invalid_items [10] are outside the batch"),
    ],
)
async def test_invalid_batch_fails_fast_and_non_retryable(
    client: Client,
    store: IngestStore,
    record_history: RecordHistory,
    overrides: dict[str, Any],
    message: str,
) -> None:
    fields: dict[str, Any] = {"batch_id": new_batch_id(), "item_count": 10, "chunk_size": 5}
    request = BatchRequest(**(fields | overrides))
    started = time.monotonic()
    launched = await start_batch(client, request)
    error = await failure_of(launched.handle)
    assert time.monotonic() - started < 10
    assert error.type == "InvalidBatch" and error.non_retryable and message in error.message
    events = await events_of(launched.handle)
    assert children_started(events) == []
    assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    assert store.items(request.batch_id) == []
    if "chunk_size" in overrides:
        await record_history("ingest", "invalid_batch", launched.handle)


async def test_invalid_chunk_fails_fast_and_non_retryable(client: Client) -> None:
    chunk = ChunkRequest(batch_id=new_batch_id(), chunk_index=0, first_item=0, item_count=0)
    handle = await client.start_workflow(
        ChunkWorkflow.run,
        chunk,
        id=chunk_workflow_id(chunk.batch_id, 0),
        task_queue=QUEUE.task_queue,
    )
    error = await failure_of(handle)
    assert error.type == "InvalidChunk" and error.non_retryable
    assert "the chunk is empty" in error.message
    events = await events_of(handle)
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in [e.event_type for e in events]
