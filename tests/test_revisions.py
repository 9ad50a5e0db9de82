"""Every installed queue's revisions, read for a worker's readiness without Alembic, are what
Alembic reads (``fleet db migrate``): a revision file the source reading cannot follow would
only cost the worker Alembic's memory, but one it read wrong would misjudge the schema."""

from __future__ import annotations

import pytest
from workerkit import Queue, discover_queues
from workerkit._migrations import _alembic_revisions, _read_revisions

STATEFUL = [q for q in discover_queues().values() if q.migrations]


@pytest.mark.parametrize("queue", STATEFUL, ids=[q.name for q in STATEFUL])
def test_revisions_read_from_source_as_alembic_reads_them(queue: Queue) -> None:
    assert queue.migrations is not None
    found = _read_revisions(queue.migrations)
    assert found is not None, "read by Alembic: the worker then loads it for readiness"
    assert found == _alembic_revisions(queue.migrations)
