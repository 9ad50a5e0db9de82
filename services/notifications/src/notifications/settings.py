"""Settings of the notifications service, from ``NOTIFICATIONS_*`` environment variables."""

from datetime import timedelta

from workerkit import Accepts, EnvSettings, setting


class NotificationsSettings(EnvSettings, prefix="NOTIFICATIONS_"):
    """How fast the simulated SMS provider accepts messages (the outbox is in DATABASE_URL)."""

    sms_rate_limit: int = setting(
        Accepts.integer(min=1), default=10, doc="SMS messages a recipient may get per window"
    )
    sms_rate_window: timedelta = setting(
        Accepts.duration(above=timedelta(0), what="a positive duration such as 60s, 1m"),
        default=timedelta(seconds=60),
        doc="the window of the SMS rate limit",
    )
