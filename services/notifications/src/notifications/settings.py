"""Settings of the notifications service, from ``NOTIFICATIONS_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class NotificationsSettings:
    """What the activities need from their environment."""

    greeting: str

    @classmethod
    def from_env(cls) -> NotificationsSettings:
        """Read ``NOTIFICATIONS_GREETING``."""
        return cls(greeting=os.environ.get("NOTIFICATIONS_GREETING", "processed"))
