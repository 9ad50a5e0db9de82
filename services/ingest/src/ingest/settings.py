"""Settings of the ingest service, from ``INGEST_*`` environment variables."""

from workerkit import Accepts, EnvSettings, setting

# How long a chunk activity may go without heartbeating before Temporal retries it
# elsewhere: short, so a killed worker's chunk resumes within seconds. Every item
# heartbeats, so one item must take well under this.
HEARTBEAT_TIMEOUT_SECONDS = 3.0
MAX_SECONDS_PER_ITEM = 1.0


class IngestSettings(EnvSettings, prefix="INGEST_"):
    """How long one item takes (processed items are recorded in DATABASE_URL)."""

    seconds_per_item: float = setting(
        Accepts.number(min=0, max=MAX_SECONDS_PER_ITEM),
        default=0.01,
        doc="simulated processing time per item of a chunk",
    )
