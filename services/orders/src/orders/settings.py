"""Settings of the orders service, from ``ORDERS_*`` environment variables."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from workerkit import SettingError


@dataclass(frozen=True, kw_only=True)
class OrdersSettings:
    """Where the ledger lives and how long packing takes."""

    ledger_path: Path
    pack_seconds_per_item: float

    @classmethod
    def from_env(cls) -> OrdersSettings:
        """Read ``ORDERS_LEDGER_PATH`` and ``ORDERS_PACK_SECONDS_PER_ITEM``."""
        raw = os.environ.get("ORDERS_PACK_SECONDS_PER_ITEM", "0.05")
        try:
            pack = float(raw)
            if pack < 0:
                raise ValueError(raw)
        except ValueError:
            raise SettingError("ORDERS_PACK_SECONDS_PER_ITEM", raw, "a number >= 0") from None
        default_path = Path(tempfile.gettempdir()) / "orders-ledger.sqlite3"
        path = Path(os.environ.get("ORDERS_LEDGER_PATH") or default_path)
        return cls(ledger_path=path, pack_seconds_per_item=pack)
