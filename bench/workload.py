"""The bench workloads, shared by both workers and by the driver.

- ``echo``: :class:`BenchWorkflow`, one trivial activity: the cost of the worker itself.
- ``chain``: :class:`ChainWorkflow`, :data:`CHAIN_LENGTH` activities one after another: how the
  cost grows with the history (each activation replays nothing, but the cached run and its
  history grow).
- ``saga``: the orders queue's ``OrderWorkflow`` with its real activities on SQLite, confirmed
  by a signal sent with the start: a realistic workflow.

Workers import this module, and the SDK sandbox re-imports it, so it has no side effects.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from temporalio import activity, workflow

Workload = Literal["echo", "chain", "saga"]
WORKLOADS: tuple[Workload, ...] = ("echo", "chain", "saga")
CHAIN_LENGTH = 20


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


@workflow.defn
class ChainWorkflow:
    """Runs :func:`echo` :data:`CHAIN_LENGTH` times in a row and returns the last result."""

    @workflow.run
    async def run(self, text: str) -> str:
        for _ in range(CHAIN_LENGTH):
            text = await workflow.execute_activity(
                echo, text, start_to_close_timeout=timedelta(seconds=30)
            )
        return text
