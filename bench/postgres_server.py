"""A real PostgreSQL for the bench and the soak: the test suite's (Debian's binaries)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from child_processes import BENCH_DIR


@contextlib.contextmanager
def postgres(wanted: bool) -> Iterator[Any]:
    """A running ``PostgresServer`` (``tests/postgres.py``) when ``wanted``, else None."""
    if not wanted:
        yield None
        return
    sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
    from postgres import PostgresServer

    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()
