"""A local SQLite ledger of stock, reservations, payments, shipments and notifications.

Every operation is idempotent by order id, so an activity retried after a crash never
reserves, charges or notifies twice; every change is appended to ``events`` so the saga
and its compensation can be read back in order.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from workerkit import SqliteFile

from orders.models import LineItem

# Stock a fresh ledger starts with, so a new deployment can take orders at once.
DEMO_STOCK = {"sku-widget": 1000, "sku-gadget": 1000, "sku-gizmo": 5}
# Tokens of the simulated payment provider, in the style of card test tokens.
DECLINED_TOKEN = "tok_declined"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, available INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (
    order_id TEXT PRIMARY KEY, reservation_id TEXT NOT NULL, items TEXT NOT NULL,
    status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS payments (
    order_id TEXT PRIMARY KEY, payment_id TEXT NOT NULL, customer_id TEXT NOT NULL,
    amount_cents INTEGER NOT NULL, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shipments (
    order_id TEXT PRIMARY KEY, tracking_number TEXT NOT NULL, address TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notifications (
    order_id TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL,
    PRIMARY KEY (order_id, kind));
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, order_id TEXT NOT NULL, kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '');
"""


class LedgerError(Exception):
    """A business rule refused the operation; retrying cannot help."""

    error_type = "LedgerError"


class UnknownSku(LedgerError):
    error_type = "UnknownSku"


class OutOfStock(LedgerError):
    error_type = "OutOfStock"


class PaymentDeclined(LedgerError):
    error_type = "PaymentDeclined"


class FraudSuspected(LedgerError):
    error_type = "FraudSuspected"


class Ledger:
    """The ledger in the SQLite file at ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = SqliteFile(path, _SCHEMA)
        with self._tx() as db:
            if db.execute("SELECT COUNT(*) FROM stock").fetchone()[0] == 0:
                db.executemany("INSERT INTO stock VALUES (?, ?)", DEMO_STOCK.items())

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db.transaction()

    @staticmethod
    def _event(db: sqlite3.Connection, order_id: str, kind: str, detail: str = "") -> None:
        db.execute(
            "INSERT INTO events (order_id, kind, detail) VALUES (?, ?, ?)",
            (order_id, kind, detail),
        )

    def set_stock(self, sku: str, available: int) -> None:
        """Set the available quantity of ``sku``."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO stock VALUES (?, ?)", (sku, available))

    def available(self, sku: str) -> int:
        """Return the available quantity of ``sku`` (0 if unknown)."""
        with self._tx() as db:
            row = db.execute("SELECT available FROM stock WHERE sku = ?", (sku,)).fetchone()
        return int(row[0]) if row else 0

    def reserve(self, order_id: str, items: Sequence[LineItem]) -> str:
        """Take ``items`` out of stock for ``order_id``; return the reservation id."""
        with self._tx() as db:
            row = db.execute(
                "SELECT reservation_id, status FROM reservations WHERE order_id = ?", (order_id,)
            ).fetchone()
            if row and row[1] == "reserved":
                return str(row[0])
            for item in items:
                have = db.execute(
                    "SELECT available FROM stock WHERE sku = ?", (item.sku,)
                ).fetchone()
                if have is None:
                    raise UnknownSku(f"unknown sku {item.sku!r}")
                if have[0] < item.quantity:
                    raise OutOfStock(
                        f"sku {item.sku!r}: {item.quantity} requested, {have[0]} available"
                    )
            for item in items:
                db.execute(
                    "UPDATE stock SET available = available - ? WHERE sku = ?",
                    (item.quantity, item.sku),
                )
            reservation_id = row[0] if row else f"res-{uuid.uuid4().hex[:12]}"
            payload = json.dumps([[i.sku, i.quantity] for i in items])
            db.execute(
                "INSERT OR REPLACE INTO reservations VALUES (?, ?, ?, 'reserved')",
                (order_id, reservation_id, payload),
            )
            self._event(db, order_id, "reserved", reservation_id)
            return str(reservation_id)

    def release(self, order_id: str) -> bool:
        """Return reserved stock; ``False`` if nothing was reserved or it was already released."""
        with self._tx() as db:
            row = db.execute(
                "SELECT items FROM reservations WHERE order_id = ? AND status = 'reserved'",
                (order_id,),
            ).fetchone()
            if row is None:
                return False
            for sku, quantity in json.loads(row[0]):
                db.execute(
                    "UPDATE stock SET available = available + ? WHERE sku = ?", (quantity, sku)
                )
            db.execute(
                "UPDATE reservations SET status = 'released' WHERE order_id = ?", (order_id,)
            )
            self._event(db, order_id, "released")
            return True

    def screen(self, order_id: str, customer_id: str, total_cents: int, limit_cents: int) -> None:
        """Refuse an order above the fraud limit; record that the order was screened."""
        if total_cents > limit_cents:
            raise FraudSuspected(
                f"order {order_id} for customer {customer_id}: total {total_cents} cents "
                f"exceeds the screening limit of {limit_cents}"
            )
        with self._tx() as db:
            self._event(db, order_id, "screened")

    def charge(self, order_id: str, customer_id: str, amount_cents: int, token: str) -> str:
        """Charge the customer once per order; return the payment id."""
        with self._tx() as db:
            row = db.execute(
                "SELECT payment_id, status FROM payments WHERE order_id = ?", (order_id,)
            ).fetchone()
            if row and row[1] == "charged":
                return str(row[0])
            if token == DECLINED_TOKEN:
                raise PaymentDeclined(f"payment for order {order_id} was declined")
            payment_id = row[0] if row else f"pay-{uuid.uuid4().hex[:12]}"
            db.execute(
                "INSERT OR REPLACE INTO payments VALUES (?, ?, ?, ?, 'charged')",
                (order_id, payment_id, customer_id, amount_cents),
            )
            self._event(db, order_id, "charged", f"{amount_cents}")
            return str(payment_id)

    def refund(self, order_id: str) -> bool:
        """Refund the order's charge; ``False`` if there was none or it was refunded."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE payments SET status = 'refunded' WHERE order_id = ? AND status = 'charged'",
                (order_id,),
            )
            if cur.rowcount == 0:
                return False
            self._event(db, order_id, "refunded")
            return True

    def record_shipment(self, order_id: str, address: str) -> str:
        """Record the shipment once; return its tracking number."""
        with self._tx() as db:
            row = db.execute(
                "SELECT tracking_number FROM shipments WHERE order_id = ?", (order_id,)
            ).fetchone()
            if row:
                return str(row[0])
            tracking = f"trk-{uuid.uuid4().hex[:12]}"
            db.execute("INSERT INTO shipments VALUES (?, ?, ?)", (order_id, tracking, address))
            self._event(db, order_id, "shipped", tracking)
            return tracking

    def notify(self, order_id: str, kind: str, message: str) -> bool:
        """Store a customer notification once per order and kind; ``True`` if new."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO notifications VALUES (?, ?, ?)", (order_id, kind, message)
            )
            if cur.rowcount:
                self._event(db, order_id, f"notified:{kind}")
            return bool(cur.rowcount)

    def events(self, order_id: str) -> list[str]:
        """Return the kinds of the order's events, oldest first."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT kind FROM events WHERE order_id = ? ORDER BY seq", (order_id,)
            ).fetchall()
        return [str(r[0]) for r in rows]
