"""The project's worker in the bench: ``workerkit.run_queues``, exactly as deployed.

Usage: ``python project_worker.py NAME WORKLOAD [QUEUES]``. ``echo`` and ``chain`` run on
``QUEUES`` bench queues named ``NAME`` (one) or ``NAMEq0``... (several) in one process;
``saga`` runs the orders queue's own declaration (workflows, activities, settings) renamed
``NAME``. Everything else (server address, HTTP port, log format, slot counts, sandbox,
OTLP endpoint, database) comes from the ``TEMPORAL_*``, ``WORKER_*``, ``OTEL_*`` and
``DATABASE_URL`` variables, as in a deployed worker.
"""

from __future__ import annotations

import dataclasses
import sys

from temporalio.common import VersioningBehavior
from workerkit import Queue, exit_process, run_queues

from workload import BenchWorkflow, ChainWorkflow, echo


def queue_names(name: str, count: int) -> list[str]:
    """The bench queue names for ``count`` queues in one process."""
    return [name] if count == 1 else [f"{name}q{i}" for i in range(count)]


def queues(name: str, workload: str, count: int) -> list[Queue]:
    if workload == "saga":
        from orders.queue import QUEUE

        # Renamed, the queue's metrics would no longer start with its name; the workflow
        # records them all the same (the declaration only sets histogram buckets).
        return [dataclasses.replace(QUEUE, name=name, metrics=())]
    workflow = BenchWorkflow if workload == "echo" else ChainWorkflow
    return [
        Queue(
            name=each,
            workflows=[workflow],
            activities=[echo],
            versioning=VersioningBehavior.PINNED,
        )
        for each in queue_names(name, count)
    ]


def main() -> None:
    name, workload, *rest = sys.argv[1:]
    exit_process(run_queues(queues(name, workload, int(rest[0]) if rest else 1)))


if __name__ == "__main__":
    main()
