"""The bench workload, shared by both workers: one workflow that runs one trivial activity.

Workers import this module, and the SDK sandbox re-imports it, so it has no side effects.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def echo(text: str) -> str:
    """Return ``text`` unchanged: the cheapest possible activity round trip."""
    return text


@workflow.defn
class BenchWorkflow:
    """Runs :func:`echo` once and returns its result."""

    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(
            echo, text, start_to_close_timeout=timedelta(seconds=30)
        )
