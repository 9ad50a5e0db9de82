"""Activities of the agent: one model call, one tool call; Temporal owns every retry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from workerkit import activities_of, database_call, open_database

from agent.models import ModelReply, ModelRequest, ToolRequest
from agent.providers import Provider, ProviderError, RateLimited, make_provider
from agent.settings import AgentSettings
from agent.tools import Outbox, Toolbox, ToolError

# A tool's result goes into the conversation (and the workflow history): keep it bounded.
MAX_TOOL_RESULT_CHARS = 4000


class AgentActivities:
    """The agent's activities, bound to a model provider and a toolbox at worker start."""

    def __init__(self, provider: Provider, toolbox: Toolbox) -> None:
        self.provider = provider
        self.toolbox = toolbox

    @activity.defn
    async def call_model(self, request: ModelRequest) -> ModelReply:
        """Ask the model for the next step: tool calls, or the final answer.

        Raises:
            ApplicationError: ``RateLimited`` with ``next_retry_delay`` set to the provider's
                ``Retry-After``; ``ModelRequestRejected`` (non-retryable) for a 4xx;
                otherwise a retryable error named after the failure.
        """
        attempt = activity.info().attempt
        try:
            return await asyncio.to_thread(self.provider.complete, request, attempt=attempt)
        except RateLimited as err:
            delay = None if err.retry_after is None else timedelta(seconds=err.retry_after)
            activity.logger.warning(
                "model rate limited", extra={"retry_after_s": err.retry_after, "attempt": attempt}
            )
            raise ApplicationError(str(err), type=err.error_type, next_retry_delay=delay) from err
        except ProviderError as err:
            raise ApplicationError(
                str(err), type=err.error_type, non_retryable=not err.retryable
            ) from err

    @activity.defn
    async def run_tool(self, request: ToolRequest) -> str:
        """Run one tool call; a call the tool cannot accept returns ``error: …`` for the model.

        Safe to retry: sensitive tools are idempotent by ``<task_id>/<call id>``.
        """
        try:
            result = await database_call(self.toolbox.run, request.task_id, request.call)
        except ToolError as err:
            result = f"error: {err}"
        if len(result) > MAX_TOOL_RESULT_CHARS:
            result = result[:MAX_TOOL_RESULT_CHARS] + " …(truncated)"
        return result


def create_activities(settings: AgentSettings | None = None) -> list[Callable[..., Any]]:
    """Bind the activities to a toolbox on the process's database and to the model provider
    ``settings`` choose (default: read from the environment)."""
    settings = settings or AgentSettings.from_env()
    toolbox = Toolbox(Outbox(open_database(application_name="agent")))
    return activities_of(AgentActivities(make_provider(settings), toolbox))
