"""Settings of the ingest service, from ``INGEST_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class IngestSettings:
    """What the activities need from their environment."""

    greeting: str

    @classmethod
    def from_env(cls) -> IngestSettings:
        """Read ``INGEST_GREETING``."""
        return cls(greeting=os.environ.get("INGEST_GREETING", "processed"))
