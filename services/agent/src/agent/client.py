"""Launch helpers for callers of the agent queue."""

from __future__ import annotations

from temporalio.client import Client
from workerkit import Launched, launch

from agent.models import AgentRequest
from agent.queue import QUEUE


async def start_request(client: Client, request: AgentRequest) -> Launched:
    """Start the request's workflow; a second call for the same request returns the first run."""
    return await launch(client, QUEUE, "AgentWorkflow", request)
