"""Side A of the bench: the project's worker, ``workerkit.run_queues`` on one bench queue.

Usage: ``python project_worker.py QUEUE_NAME``. Everything else (server address, HTTP
port, log format, slot counts, OTLP endpoint) comes from the ``TEMPORAL_*``, ``WORKER_*``
and ``OTEL_*`` variables, exactly as in a deployed worker.
"""

from __future__ import annotations

import sys

from temporalio.common import VersioningBehavior
from workerkit import Queue, exit_process, run_queues

from workload import BenchWorkflow, echo


def main() -> None:
    queue = Queue(
        name=sys.argv[1],
        workflows=[BenchWorkflow],
        activities=[echo],
        versioning=VersioningBehavior.PINNED,
    )
    exit_process(run_queues([queue]))


if __name__ == "__main__":
    main()
