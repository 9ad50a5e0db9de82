"""Settings of the ingest service, from ``INGEST_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass

from workerkit import SettingError

# How long a chunk activity may go without heartbeating before Temporal retries it
# elsewhere: short, so a killed worker's chunk resumes within seconds. Every item
# heartbeats, so one item must take well under this.
HEARTBEAT_TIMEOUT_SECONDS = 3.0
MAX_SECONDS_PER_ITEM = 1.0


@dataclass(frozen=True, kw_only=True)
class IngestSettings:
    """How long one item takes (processed items are recorded in DATABASE_URL)."""

    seconds_per_item: float

    @classmethod
    def from_env(cls) -> IngestSettings:
        """Read ``INGEST_SECONDS_PER_ITEM``."""
        raw = os.environ.get("INGEST_SECONDS_PER_ITEM", "0.01")
        try:
            seconds = float(raw)
            if not 0 <= seconds <= MAX_SECONDS_PER_ITEM:
                raise ValueError(raw)
        except ValueError:
            raise SettingError(
                "INGEST_SECONDS_PER_ITEM", raw, f"a number from 0 to {MAX_SECONDS_PER_ITEM:g}"
            ) from None
        return cls(seconds_per_item=seconds)
