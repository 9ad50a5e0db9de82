"""Settings of the orders service, from ``ORDERS_*`` environment variables."""

from workerkit import Accepts, EnvSettings, setting


class OrdersSettings(EnvSettings, prefix="ORDERS_"):
    """How long packing takes, and the fraud screening limit (the ledger is in DATABASE_URL)."""

    pack_seconds_per_item: float = setting(
        Accepts.number(min=0), default=0.05, doc="seconds ship_order takes to pack one unit"
    )
    fraud_limit_cents: int = setting(
        Accepts.integer(min=0),
        default=1_000_000,
        doc="orders above this total (in cents) are refused by fraud screening",
    )
