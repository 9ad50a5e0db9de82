"""What the bench runs: the variants of a worker (``run.py``'s docstring describes each) and
the comparisons of their CPU per workflow."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from workload import Workload

Worker = Literal["project", "bare"]
# Identical concurrency for both sides: workerkit's defaults, which are also the SDK's.
TUNING = {
    "WORKER_MAX_CONCURRENT_ACTIVITIES": "100",
    "WORKER_MAX_CONCURRENT_WORKFLOW_TASKS": "100",
    "WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES": "100",
    "WORKER_MAX_CACHED_WORKFLOWS": "1000",
    "WORKER_MAX_POLLERS": "5",
}
# The saga's settings on both sides: no simulated packing time, so a run measures the
# worker and the ledger, not a sleep.
SAGA_ENV = {"ORDERS_PACK_SECONDS_PER_ITEM": "0"}


@dataclass(frozen=True)
class Variant:
    """One way of running a worker."""

    name: str
    worker: Worker
    workload: Workload = "echo"
    queues: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    trace_export: bool = False

    @property
    def share(self) -> float:
        """Its part of ``--workflows``: a chain runs 20 activities, a saga 6 steps."""
        return {"echo": 1.0, "chain": 0.2, "saga": 0.5}[self.workload]


VARIANTS = {
    v.name: v
    for v in (
        Variant("bare", "bare"),
        Variant("bare+libs", "bare", env={"BENCH_REQUIRED_IMPORTS": "1"}),
        Variant("project", "project"),
        Variant("project+trace", "project", trace_export=True),
        Variant("project-sandbox", "project", env={"WORKER_WORKFLOW_SANDBOX": "true"}),
        Variant("project-16q", "project", queues=16),
        Variant("bare-chain", "bare", "chain"),
        Variant("project-chain", "project", "chain"),
        Variant("bare-saga", "bare", "saga", env=SAGA_ENV),
        Variant("project-saga", "project", "saga", env=SAGA_ENV),
    )
}


@dataclass(frozen=True)
class Comparison:
    """CPU per workflow of ``numerator`` over ``denominator``, at most ``target``."""

    label: str
    numerator: str
    denominator: str
    target: float | None


COMPARISONS = (
    # The default runs workflows unsandboxed: the 0.90 for defaults, 0.70 for that mode.
    Comparison("project / bare SDK, 1 activity", "project", "bare", 0.70),
    Comparison("project / bare SDK, orders saga", "project-saga", "bare-saga", 0.90),
    Comparison("project / bare SDK, 20 activities", "project-chain", "bare-chain", None),
    Comparison("trace export at 100% / project", "project+trace", "project", 1.05),
    Comparison("sandboxed project / bare SDK", "project-sandbox", "bare", None),
    Comparison("16 queues / 1 queue", "project-16q", "project", 1.10),
)
