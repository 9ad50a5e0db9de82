"""The batch ingest workflow and its chunk child workflow."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from workerkit import failure_reason, invalid_input

    from ingest.activities import IngestActivities
    from ingest.ids import chunk_workflow_id
    from ingest.models import (
        BatchCheckpoint,
        BatchProgress,
        BatchRequest,
        BatchResult,
        BatchTotals,
        ChunkFailure,
        ChunkRequest,
        ChunkResult,
        batch_problem,
        chunk_count,
        chunk_problem,
        plan_chunk,
    )
    from ingest.settings import HEARTBEAT_TIMEOUT_SECONDS

# A chunk may take long; the heartbeat timeout, not this, detects a dead worker.
CHUNK_TIMEOUT = timedelta(hours=2)
CHUNK_HEARTBEAT_TIMEOUT = timedelta(seconds=HEARTBEAT_TIMEOUT_SECONDS)
CHUNK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)


@workflow.defn
class ChunkWorkflow:
    """Process one chunk of a batch with one long, heartbeating, resumable activity."""

    @workflow.run
    async def run(self, chunk: ChunkRequest) -> ChunkResult:
        problem = chunk_problem(chunk)
        if problem:
            raise invalid_input("chunk", problem)
        try:
            return await workflow.execute_activity_method(
                IngestActivities.process_chunk,
                chunk,
                start_to_close_timeout=CHUNK_TIMEOUT,
                heartbeat_timeout=CHUNK_HEARTBEAT_TIMEOUT,
                retry_policy=CHUNK_RETRY,
            )
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                raise  # the batch was cancelled: so is its chunk
            raise ApplicationError(
                f"chunk {chunk.chunk_index} failed: {failure_reason(err, with_type=False)}",
                type="ChunkFailed",
                non_retryable=True,
            ) from err


@workflow.defn
class BatchIngestWorkflow:
    """Split a batch into chunks and run them as child workflows, at most N at once.

    The window slides: as soon as one chunk finishes the next starts. After
    ``chunks_per_run`` chunks (or when Temporal suggests it) the run lets its running
    chunks finish and continues as new with its totals and cursor, so no run's history
    grows large; the last run returns the totals over every run.
    """

    @workflow.init
    def __init__(self, request: BatchRequest) -> None:
        checkpoint = request.checkpoint
        if checkpoint is None:
            self._totals = BatchTotals()
            self._next_chunk = 0
            self._run = 1
        else:
            self._totals = replace(checkpoint.totals, failures=list(checkpoint.totals.failures))
            self._next_chunk = checkpoint.next_chunk
            self._run = checkpoint.runs_completed + 1
        self._batch_id = request.batch_id
        self._chunk_count = 0
        self._in_flight: dict[int, asyncio.Task[ChunkResult | ChunkFailure]] = {}

    @workflow.run
    async def run(self, request: BatchRequest) -> BatchResult:
        problem = batch_problem(request)
        if problem:
            raise invalid_input("batch", problem)
        self._chunk_count = chunk_count(request)
        started = 0
        while True:
            while (
                self._next_chunk < self._chunk_count
                and len(self._in_flight) < request.max_concurrent_children
                and not self._time_to_continue_as_new(request, started)
            ):
                chunk = plan_chunk(request, self._next_chunk)
                self._in_flight[chunk.chunk_index] = asyncio.create_task(self._run_chunk(chunk))
                self._next_chunk += 1
                started += 1
                self._totals.max_in_flight = max(self._totals.max_in_flight, len(self._in_flight))
            if not self._in_flight:
                break
            done, _ = await workflow.wait(
                list(self._in_flight.values()), return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                outcome = task.result()
                del self._in_flight[outcome.chunk_index]
                if isinstance(outcome, ChunkFailure):
                    self._totals.add_failure(outcome)
                else:
                    self._totals.add_result(outcome)

        if self._next_chunk < self._chunk_count:
            workflow.logger.info(
                "continuing as new",
                extra={"next_chunk": self._next_chunk, "chunk_count": self._chunk_count},
            )
            checkpoint = BatchCheckpoint(self._next_chunk, self._run, self._totals)
            workflow.continue_as_new(replace(request, checkpoint=checkpoint))
        return BatchResult(
            batch_id=request.batch_id,
            item_count=request.item_count,
            chunk_count=self._chunk_count,
            runs=self._run,
            totals=self._totals,
        )

    def _time_to_continue_as_new(self, request: BatchRequest, started: int) -> bool:
        # A run always starts at least one chunk, so a suggestion can't loop forever.
        if started == 0:
            return False
        return started >= request.chunks_per_run or workflow.info().is_continue_as_new_suggested()

    async def _run_chunk(self, chunk: ChunkRequest) -> ChunkResult | ChunkFailure:
        try:
            return await workflow.execute_child_workflow(
                ChunkWorkflow.run,
                chunk,
                id=chunk_workflow_id(chunk.batch_id, chunk.chunk_index),
                # Stopping the batch stops its chunks; each can stop cleanly at a heartbeat.
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                static_summary=f"items {chunk.first_item}+{chunk.item_count}",
            )
        except (ChildWorkflowError, WorkflowAlreadyStartedError) as err:
            reason = failure_reason(err, with_type=False)
            workflow.logger.warning(
                "chunk failed", extra={"chunk_index": chunk.chunk_index, "error": reason}
            )
            return ChunkFailure(chunk.chunk_index, chunk.first_item, chunk.item_count, reason)

    @workflow.query
    def progress(self) -> BatchProgress:
        return BatchProgress(
            batch_id=self._batch_id,
            run=self._run,
            chunk_count=self._chunk_count,
            next_chunk=self._next_chunk,
            in_flight=sorted(self._in_flight),
            totals=self._totals,
        )
