"""An in-process agent worker (with all workerkit interceptors) on the test server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from temporalio.client import Client
from workerkit import Database

from agent.activities import create_activities
from agent.models import AgentTask
from agent.queue import QUEUE
from agent.settings import AgentSettings
from agent.tools import Outbox

from support import in_process_worker


@pytest.fixture(scope="module")
def outbox(postgres_database: Database) -> Outbox:
    """The outbox the module's worker uses, on the module's PostgreSQL database."""
    return Outbox(postgres_database)


@pytest.fixture(scope="module")
async def agent_worker(client: Client, postgres_url: str) -> AsyncIterator[None]:
    """The queue's worker and activities, with the local provider and a test outbox."""
    settings = AgentSettings.from_env({"AGENT_PROVIDER": "local"})
    async with in_process_worker(
        client, QUEUE, lambda: create_activities(settings), database_url=postgres_url
    ):
        yield


@pytest.fixture
def make_task() -> Callable[..., AgentTask]:
    def make(prompt: str, **overrides: Any) -> AgentTask:
        fields: dict[str, Any] = {
            "task_id": f"test-{uuid.uuid4().hex[:10]}",
            "prompt": prompt,
            "max_turns": 8,
            "approval_timeout_seconds": 60.0,
        }
        fields.update(overrides)
        return AgentTask(**fields)

    return make
