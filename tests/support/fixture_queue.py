"""The fixture queue (``queues/fixture``): what the shared library's tests run instead of a
service's queue, so that no service's change breaks them.

``queues/`` holds its package and its registration (``fixture-0.0.0.dist-info``, entry point
``fixture = fixture.queue:QUEUE``) side by side, as site-packages holds an installed
service's: with ``queues/`` on ``sys.path`` and ``PYTHONPATH``, the registry and ``fleet
worker fixture`` find it through ``importlib.metadata``, the way they find any service. Only
:func:`fixture_queue_registered` puts it there, for the test that asks: the registry that
``make dev``, the images, the chart and the other tests see (and check queue by queue)
never lists it.

Its classes are importable from here at any time (importing registers nothing), loaded by
the name its entry point gives, so they are the very objects its workers and the registry
use. A sandboxed worker or replayer of it runs inside :func:`fixture_queue_registered`: the
sandbox imports the workflow module anew, from ``sys.path``.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from temporalio.client import WorkflowHandle
from workerkit import Queue, discover_queues, get_queue

from support.temporal import wait_for_query

QUEUES_DIR = Path(__file__).parent / "queues"
NAME = "fixture"

if TYPE_CHECKING:
    # The type checker knows the package by its folder: tests/ is its search path.
    from support.queues.fixture.activities import FixtureActivities, Ledger
    from support.queues.fixture.models import Approval, Parcel, Receipt, Stage, Status
    from support.queues.fixture.queue import QUEUE
    from support.queues.fixture.workflows import FixtureWorkflow
else:
    # Once `fixture` is imported, its submodules are found through its own __path__: the
    # folder is on sys.path only while this import runs.
    sys.path.insert(0, str(QUEUES_DIR))
    try:
        from fixture.activities import FixtureActivities, Ledger
        from fixture.models import Approval, Parcel, Receipt, Stage, Status
        from fixture.queue import QUEUE
        from fixture.workflows import FixtureWorkflow
    finally:
        sys.path.remove(str(QUEUES_DIR))

__all__ = [
    "NAME",
    "QUEUE",
    "QUEUES_DIR",
    "Approval",
    "FixtureActivities",
    "FixtureWorkflow",
    "Ledger",
    "Parcel",
    "Receipt",
    "Stage",
    "Status",
    "fixture_queue_registered",
    "new_parcel",
    "wait_for_stage",
]


@contextmanager
def fixture_queue_registered() -> Iterator[Queue]:
    """Register the fixture queue in this process and in every process it starts meanwhile.

    Yields:
        The queue, as the registry returns it.
    """
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.syspath_prepend(str(QUEUES_DIR))
            inherited = os.environ.get("PYTHONPATH")
            patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(QUEUES_DIR), inherited])))
            # The registry is cached per process: forget what it found without the fixture.
            discover_queues.cache_clear()
            yield get_queue(NAME)
    finally:
        discover_queues.cache_clear()  # sys.path is restored: forget the fixture in turn


def new_parcel(prefix: str, *, units: int = 1) -> Parcel:
    """A parcel with a fresh id, ``<prefix>-<10 hex>``, of ``units`` units."""
    return Parcel(
        parcel_id=f"{prefix}-{uuid.uuid4().hex[:10]}",
        recipient="Alan Turing",
        address="Bletchley Park, Milton Keynes MK3 6EB",
        token="tok_visa",
        units=units,
    )


async def wait_for_stage(handle: WorkflowHandle[Any, Any], stage: Stage) -> Status:
    """Poll the parcel's ``status`` query until it reaches ``stage`` (for 20 s at most)."""
    return await wait_for_query(
        handle, FixtureWorkflow.status, lambda status: status.stage == stage, what=str(stage)
    )
