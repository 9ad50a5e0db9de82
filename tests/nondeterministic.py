"""Workflows that break determinism on purpose, for the tests of the safety net.

A module of its own because the sandbox re-imports a workflow's module for every run,
and a test module (pytest and fixtures) is not something it can import.
"""

from __future__ import annotations

import random
from datetime import datetime

from temporalio import workflow


@workflow.defn
class WallClockWorkflow:
    """Reads the wall clock: a replay a second later would see another time."""

    @workflow.run
    async def run(self) -> str:
        return datetime.now().isoformat()


@workflow.defn
class DiceWorkflow:
    """Draws from the process's random generator instead of ``workflow.random()``."""

    @workflow.run
    async def run(self) -> float:
        return random.random()
