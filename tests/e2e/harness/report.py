"""The checks that held and each phase's duration, printed at the end of the run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .commands import Failed, say


@dataclass
class Report:
    """What the run has shown so far; a check that does not hold ends it."""

    phases: list[tuple[str, float]] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the phase ``name`` (kept even when it fails)."""
        say(f"== {name}")
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.phases.append((name, time.monotonic() - t0))

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        """Record the check ``name``.

        Raises:
            Failed: ``ok`` is false (``detail`` says what was found).
        """
        if not ok:
            raise Failed(f"{name}: {detail}" if detail else name)
        self.passed.append(name)
        say(f"   ok  {name}" + (f" ({detail})" if detail else ""))

    def summary(self, base: str, sizes: list[tuple[str, float, float]], failure: str | None) -> int:
        """Print the durations, the image sizes and the verdict; the exit code."""
        total = time.monotonic() - self.started
        say("\n== durations")
        for name, seconds in self.phases:
            say(f"   {seconds:7.1f} s  {name}")
        say(f"   {total:7.1f} s  total")
        if sizes:
            say(f"\n== images (base {base})")
            for ref, size, added in sizes:
                say(f"   {ref:<36} {size:8.1f} MB   +{added:.1f} MB over the base")
        if failure:
            say(f"\nFAILED: {failure}")
            say(f"e2e: {len(self.passed)} passed, 1 failed")
            return 1
        say(f"\ne2e: {len(self.passed)} passed, 0 failed")
        return 0
