"""Settings of the orders service, from ``ORDERS_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from workerkit import SettingError, state_path


@dataclass(frozen=True, kw_only=True)
class OrdersSettings:
    """Where the ledger lives, how long packing takes, and the fraud screening limit."""

    ledger_path: Path
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
        default_path = state_path("orders-ledger.sqlite3")
        path = Path(os.environ.get("ORDERS_LEDGER_PATH") or default_path)
        return cls(ledger_path=path, pack_seconds_per_item=pack, fraud_limit_cents=limit)
