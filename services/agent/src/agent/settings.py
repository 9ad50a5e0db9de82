"""Settings of the agent service, from ``AGENT_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class AgentSettings:
    """What the activities need from their environment."""

    greeting: str

    @classmethod
    def from_env(cls) -> AgentSettings:
        """Read ``AGENT_GREETING``."""
        return cls(greeting=os.environ.get("AGENT_GREETING", "processed"))
