"""The phases of the end-to-end test, one module each (tests/e2e/run_e2e.py runs them in
order, on the stack it started): each module's docstring says what its phase shows, TITLE
names it in the report, and check(stack, report) runs it, raising Failed at the first check
that does not hold."""

from __future__ import annotations

from typing import Protocol

from e2e.harness.report import Report
from e2e.harness.stack import E2eStack


class Phase(Protocol):
    """A phase module."""

    TITLE: str

    def check(self, stack: E2eStack, report: Report) -> None:
        """Check the phase on ``stack``, recording each check in ``report``."""
