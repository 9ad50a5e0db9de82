"""What the bench runs: the variants of a worker (``run.py``'s docstring describes each), the
comparisons of their CPU per workflow, and those of their memory."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
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
    encrypt: bool = False  # payloads encrypted (FLEET_ENCRYPTION_MODE=encrypt), the client too
    postgres: bool = False  # the saga's state on PostgreSQL (DATABASE_URL) instead of SQLite

    @property
    def share(self) -> float:
        """Its part of ``--workflows``: a chain runs 20 activities, a saga 6 steps."""
        return {"echo": 1.0, "chain": 0.2, "saga": 0.5}[self.workload]


VARIANTS = {
    v.name: v
    for v in (
        Variant("bare", "bare"),
        Variant("bare+libs", "bare", env={"BENCH_REQUIRED_IMPORTS": "1"}),
        Variant("bare+prodlibs", "bare", env={"BENCH_REQUIRED_IMPORTS": "production"}),
        Variant("project", "project"),
        Variant("project+trace", "project", trace_export=True),
        Variant("project-sandbox", "project", env={"WORKER_WORKFLOW_SANDBOX": "true"}),
        Variant("project-16q", "project", queues=16),
        Variant("bare-chain", "bare", "chain"),
        Variant("project-chain", "project", "chain"),
        Variant("bare-saga", "bare", "saga", env=SAGA_ENV),
        Variant("project-saga", "project", "saga", env=SAGA_ENV),
        # The production configuration: payloads encrypted and every span exported, beside the
        # bare SDK on the same workload (on the saga, both keep its state on PostgreSQL).
        Variant("production", "project", trace_export=True, encrypt=True),
        Variant("bare-saga-pg", "bare", "saga", env=SAGA_ENV, postgres=True),
        Variant(
            "production-saga",
            "project",
            "saga",
            env=SAGA_ENV,
            trace_export=True,
            encrypt=True,
            postgres=True,
        ),
    )
}


@dataclass(frozen=True)
class Comparison:
    """A figure (CPU per workflow, or RSS) of ``numerator`` over ``denominator``, at most
    ``target``."""

    label: str
    numerator: str
    denominator: str
    target: float | None


COMPARISONS = [
    # The default runs workflows unsandboxed: the 0.90 for defaults, 0.70 for that mode.
    Comparison("project / bare SDK, 1 activity", "project", "bare", 0.70),
    Comparison("project / bare SDK, orders saga", "project-saga", "bare-saga", 0.90),
    Comparison("project / bare SDK, 20 activities", "project-chain", "bare-chain", None),
    Comparison("trace export at 100% / project", "project+trace", "project", 1.05),
    Comparison("sandboxed project / bare SDK", "project-sandbox", "bare", None),
    Comparison("16 queues / 1 queue", "project-16q", "project", 1.10),
    # No target: the production configuration's CPU is to stay where it is, shown here.
    Comparison("production / bare SDK, 1 activity", "production", "bare", None),
    Comparison("production / bare SDK, saga on PG", "production-saga", "bare-saga-pg", None),
]

# RSS after a run, medians: numerator / denominator, at most target (None: shown, not judged).
MEMORY = [
    Comparison("RSS after a run, project / bare", "project", "bare", 1.10),
    Comparison("RSS, production / bare", "production", "bare", 1.15),
    Comparison("RSS, production / bare, saga on PG", "production-saga", "bare-saga-pg", 1.15),
    Comparison("RSS, bare + required imports / bare", "bare+libs", "bare", None),
    Comparison("RSS, project / bare + required imports", "project", "bare+libs", None),
    Comparison("RSS, bare + production imports / bare", "bare+prodlibs", "bare", None),
    Comparison("RSS, production / bare + prod. imports", "production", "bare+prodlibs", None),
]


BEFORE = "@before"  # the suffix of a variant run on the code of another checkout


def add_baseline(source: Path, names: Sequence[str]) -> list[str]:
    """Register, for each variant in ``names``, the same on the code of the checkout at
    ``source`` (its ``shared/src`` and ``services/*/src`` first on ``PYTHONPATH``), compared
    with the same denominators (no target); return the new variants' names.

    A change's before and after then come from one interleaved run, under the same load.
    """
    paths = [Path(__file__).resolve().parent, source / "shared" / "src"]
    paths += sorted((source / "services").glob("*/src"))
    added = []
    for name in names:
        before = replace(
            VARIANTS[name],
            name=name + BEFORE,
            env=dict(VARIANTS[name].env) | {"PYTHONPATH": os.pathsep.join(map(str, paths))},
        )
        VARIANTS[before.name] = before
        added.append(before.name)
        for table in (COMPARISONS, MEMORY):
            table += [
                Comparison(f"{c.label} (before)", before.name, c.denominator, None)
                for c in table
                if c.numerator == name
            ]
    return added
