"""Launch helpers for callers of the ingest queue."""

from __future__ import annotations

from temporalio.client import Client
from workerkit import Launched, launch

from ingest.models import IngestRequest
from ingest.queue import QUEUE


async def start_request(client: Client, request: IngestRequest) -> Launched:
    """Start the request's workflow; a second call for the same request returns the first run."""
    return await launch(client, QUEUE, "IngestWorkflow", request)
