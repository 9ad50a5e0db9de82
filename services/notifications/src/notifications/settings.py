"""Settings of the notifications service, from ``NOTIFICATIONS_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from workerkit import SettingError, parse_duration


@dataclass(frozen=True, kw_only=True)
class NotificationsSettings:
    """How fast the simulated SMS provider accepts messages (the outbox is in DATABASE_URL)."""

    sms_rate_limit: int
    sms_rate_window: timedelta

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NotificationsSettings:
        """Read ``NOTIFICATIONS_SMS_RATE_LIMIT`` and ``NOTIFICATIONS_SMS_RATE_WINDOW``.

        Raises:
            SettingError: A variable holds a value that is not accepted.
        """
        env = os.environ if environ is None else environ
        raw_limit = env.get("NOTIFICATIONS_SMS_RATE_LIMIT", "10")
        try:
            limit = int(raw_limit)
            if limit < 1:
                raise ValueError(raw_limit)
        except ValueError:
            raise SettingError(
                "NOTIFICATIONS_SMS_RATE_LIMIT", raw_limit, "an integer >= 1"
            ) from None
        raw_window = env.get("NOTIFICATIONS_SMS_RATE_WINDOW", "60s")
        try:
            window = parse_duration(raw_window)
            if window <= timedelta(0):
                raise ValueError(raw_window)
        except ValueError:
            raise SettingError(
                "NOTIFICATIONS_SMS_RATE_WINDOW", raw_window, "a positive duration such as 60s, 1m"
            ) from None
        return cls(sms_rate_limit=limit, sms_rate_window=window)
