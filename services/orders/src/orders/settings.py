"""Settings of the orders service, from ``ORDERS_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass

from workerkit import SettingError


@dataclass(frozen=True, kw_only=True)
class OrdersSettings:
    """How long packing takes, and the fraud screening limit (the ledger is in DATABASE_URL)."""

    pack_seconds_per_item: float
    fraud_limit_cents: int

    @classmethod
    def from_env(cls) -> OrdersSettings:
        """Read the ``ORDERS_*`` variables (see the README)."""
        raw = os.environ.get("ORDERS_PACK_SECONDS_PER_ITEM", "0.05")
        try:
            pack = float(raw)
            if pack < 0:
                raise ValueError(raw)
        except ValueError:
            raise SettingError("ORDERS_PACK_SECONDS_PER_ITEM", raw, "a number >= 0") from None
        raw_limit = os.environ.get("ORDERS_FRAUD_LIMIT_CENTS", "1000000")
        try:
            limit = int(raw_limit)
            if limit < 0:
                raise ValueError(raw_limit)
        except ValueError:
            raise SettingError("ORDERS_FRAUD_LIMIT_CENTS", raw_limit, "an integer >= 0") from None
        return cls(pack_seconds_per_item=pack, fraud_limit_cents=limit)
