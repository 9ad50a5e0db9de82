"""Kill the worker mid-chunk: the retried chunk activities resume from their last heartbeat.

The workers here are real ``fleet worker ingest`` processes; this module runs no
in-process worker, so the activities can only run in the process the test kills.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from workerkit import Database

from ingest.client import start_batch
from ingest.ids import chunk_workflow_id
from ingest.models import BatchRequest, BatchResult, item_value
from ingest.store import IngestStore
from ingest.workflows import ChunkWorkflow

from support import RecordHistory, WorkerProcess

# slow: a fleet worker process SIGKILLed mid-chunk.
pytestmark = pytest.mark.slow

SpawnWorker = Callable[..., WorkerProcess]

CHUNKS = 2
CHUNK_ITEMS = 30
SECONDS_PER_ITEM = 0.15  # a chunk takes 4.5 s uninterrupted


async def heartbeated(client: Client, workflow_id: str) -> int:
    """The progress the server holds from the chunk's activity heartbeats (0 if none yet)."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return 0  # the child is not started yet
    pending = description.raw_description.pending_activities
    if not pending or not pending[0].heartbeat_details.payloads:
        return 0
    (details,) = await client.data_converter.decode(pending[0].heartbeat_details.payloads)
    return int(details["done"])


def log_events(worker: WorkerProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]


async def test_killed_worker_chunks_resume_from_their_last_heartbeat(
    client: Client,
    spawn_worker: SpawnWorker,
    postgres_url: str,
    postgres_database: Database,
    record_history: RecordHistory,
) -> None:
    # Both workers share one database, as two pods do.
    env = {"DATABASE_URL": postgres_url, "INGEST_SECONDS_PER_ITEM": str(SECONDS_PER_ITEM)}
    # No workflow cache, so no sticky queue: the workflows' next tasks go straight to the
    # second worker instead of waiting out the sticky timeout (10 s) on the dead one.
    first = spawn_worker("ingest", env=env | {"WORKER_MAX_CACHED_WORKFLOWS": "0"})
    first.wait_ready()
    request = BatchRequest(
        batch_id=f"kill-{uuid.uuid4().hex[:10]}",
        item_count=CHUNKS * CHUNK_ITEMS,
        chunk_size=CHUNK_ITEMS,
        max_concurrent_children=CHUNKS,
    )
    chunk_ids = [chunk_workflow_id(request.batch_id, i) for i in range(CHUNKS)]
    launched = await start_batch(client, request)

    # Wait until the server holds real progress of every chunk (past the first heartbeat,
    # which the SDK sends at once), then kill the worker without warning.
    deadline = time.monotonic() + 15
    seen = [0] * CHUNKS
    while min(seen) < 3:
        assert time.monotonic() < deadline, f"no heartbeat progress: {seen}"
        seen = [await heartbeated(client, wid) for wid in chunk_ids]
        await asyncio.sleep(0.05)
    first.proc.kill()
    first.proc.wait()
    store = IngestStore(postgres_database)
    before = {r.item_index for r in store.items(request.batch_id)}
    assert 0 < len(before) < request.item_count, "the kill must land mid-batch"

    second = spawn_worker("ingest", env=env)
    second.wait_ready()
    result: BatchResult = await asyncio.wait_for(launched.handle.result(), timeout=30)

    totals = result.totals
    assert (totals.chunks_completed, totals.accepted, totals.resumed_chunks) == (2, 60, 2)
    assert totals.value_total == sum(item_value(i) for i in range(request.item_count))
    items = {r.item_index: r for r in store.items(request.batch_id)}
    assert sorted(items) == list(range(request.item_count)), "every item recorded exactly once"
    duplicates = 0
    for index, workflow_id in enumerate(chunk_ids):
        chunk = await client.get_workflow_handle_for(ChunkWorkflow.run, workflow_id).result()
        first_item = index * CHUNK_ITEMS
        done_before = len([i for i in before if first_item <= i < first_item + CHUNK_ITEMS])
        # Attempt 2 started from the heartbeat details: at least what the server showed
        # before the kill, at most what the killed attempt had recorded.
        assert chunk.attempt == 2
        assert 0 < seen[index] <= chunk.resumed_from <= done_before < CHUNK_ITEMS
        attempts = [
            (a.attempt, a.resumed_from)
            for a in store.attempts(request.batch_id)
            if a.chunk_index == index
        ]
        assert attempts == [(1, 0), (2, chunk.resumed_from)]
        resume_at = first_item + chunk.resumed_from
        for i in range(first_item, first_item + CHUNK_ITEMS):
            record = items[i]
            if i < resume_at:  # done before the last heartbeat: never processed again
                assert (record.attempt, record.deliveries) == (1, 1), record
            elif i in before:  # done after it: processed again, recorded once
                assert (record.attempt, record.deliveries) == (1, 2), record
            else:
                assert (record.attempt, record.deliveries) == (2, 1), record
        assert chunk.duplicates == done_before - chunk.resumed_from
        duplicates += chunk.duplicates
    assert totals.duplicates == duplicates

    resumed = [
        e for e in log_events(second) if e["msg"] == "resuming chunk from its last heartbeat"
    ]
    assert sorted(e["workflow_id"] for e in resumed) == chunk_ids
    assert all(e["attempt"] == 2 and e["resumed_from"] > 0 for e in resumed)
    assert not any(e["msg"].startswith("resuming") for e in log_events(first))
    await record_history("ingest", "worker_killed", launched.handle)
    await record_history("ingest", "chunk_resumed", client.get_workflow_handle(chunk_ids[0]))
