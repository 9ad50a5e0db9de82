"""Launch helpers for callers of the ingest queue."""

from __future__ import annotations

from temporalio.client import Client
from workerkit import Launched, launch

from ingest.models import BatchRequest, BatchResult
from ingest.queue import QUEUE
from ingest.workflows import BatchIngestWorkflow


async def start_batch(client: Client, request: BatchRequest) -> Launched[BatchResult]:
    """Start the batch's workflow; a second call for the same batch returns the first run."""
    return await launch(
        client,
        QUEUE,
        BatchIngestWorkflow.run,
        request,
        memo={"item_count": request.item_count, "chunk_size": request.chunk_size},
    )
