"""Activities of the ingest queue: the side effects, each safe to retry."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from temporalio import activity

from ingest.models import IngestRequest
from ingest.settings import IngestSettings


class IngestActivities:
    """Activities bound to what they need (clients, paths) at worker start."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings

    @activity.defn
    async def process(self, request: IngestRequest) -> str:
        return f"{self.settings.greeting}: {request.payload}"

    def all(self) -> list[Callable[..., Coroutine[Any, Any, Any]]]:
        """Every activity, for the worker to register."""
        return [self.process]


def create_activities() -> list[Callable[..., Coroutine[Any, Any, Any]]]:
    """Build the activities from the environment when the worker starts."""
    return IngestActivities(IngestSettings.from_env()).all()
