"""Fixtures of the shared library's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from workerkit import Queue

from support.fixture_queue import fixture_queue_registered


@pytest.fixture
def fixture_queue() -> Iterator[Queue]:
    """The fixture queue, registered while the test runs (see :mod:`support.fixture_queue`)."""
    with fixture_queue_registered() as queue:
        yield queue
