"""The orders ledger (stock, reservations, payments, shipments, notifications) in the database.

Every operation is idempotent by order id, enforced by the tables' keys, and every id it
hands out is derived from the order id, so a retry (on this worker or on another pod, after
a crash at any point) finds what the first attempt did instead of doing it again. The
payment provider is called with an idempotency key derived from the order too, so it never
charges twice either. Every change is appended to ``orders_events`` so the saga and its
compensation can be read back in order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager

from sqlalchemy import Connection, text
from workerkit import Database, derived_id

from orders.models import LineItem

# Tokens of the simulated payment provider, in the style of card test tokens.
DECLINED_TOKEN = "tok_declined"


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


class NothingToUndo(LedgerError):
    """A compensation found nothing of what it should undo: the ledger and the saga disagree."""

    error_type = "NothingToUndo"


class PaymentProvider:
    """The simulated payment provider: a charge per idempotency key, as real providers offer.

    It keeps its own table and its own transactions, the way an external API is outside
    the ledger's transaction: a worker that dies after the provider charged and before the
    ledger recorded it leaves a charge that the retry's same key finds again.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def charge(self, idempotency_key: str, *, order_id: str, amount_cents: int) -> str:
        """Charge once per key; return the payment id (the first one, on a repeat)."""
        payment_id = derived_id("pay", idempotency_key)
        with self.db.transaction() as db:
            # No conflict target: the payment id is unique too, and two attempts racing
            # with one key can collide on either index first (PostgreSQL raises on a
            # unique index that is not the target). Both mean "already charged".
            db.execute(
                text(
                    "INSERT INTO orders_provider_charges "
                    "(idempotency_key, payment_id, order_id, amount_cents) "
                    "VALUES (:key, :payment_id, :order_id, :amount) "
                    "ON CONFLICT DO NOTHING"
                ),
                {
                    "key": idempotency_key,
                    "payment_id": payment_id,
                    "order_id": order_id,
                    "amount": amount_cents,
                },
            )
        return payment_id

    def refund(self, payment_id: str) -> bool:
        """Refund a charge; ``False`` if the provider has no such charge."""
        with self.db.transaction() as db:
            found = db.execute(
                text("UPDATE orders_provider_charges SET refunded = TRUE WHERE payment_id = :p"),
                {"p": payment_id},
            ).rowcount
        return bool(found)

    def charges(self, order_id: str) -> list[tuple[str, int, bool]]:
        """The provider's charges for an order: ``(payment_id, amount_cents, refunded)``."""
        with self.db.transaction() as db:
            rows = db.execute(
                text(
                    "SELECT payment_id, amount_cents, refunded FROM orders_provider_charges "
                    "WHERE order_id = :o ORDER BY payment_id"
                ),
                {"o": order_id},
            ).all()
        return [(str(p), int(a), bool(r)) for p, a, r in rows]


class Ledger:
    """The ledger in ``db`` (its schema applied by ``fleet db migrate``)."""

    def __init__(self, db: Database, provider: PaymentProvider | None = None) -> None:
        self.db = db
        self.provider = provider or PaymentProvider(db)

    def _order_tx(self, order_id: str) -> AbstractContextManager[Connection]:
        # One order's steps never interleave, whichever pods run them.
        return self.db.transaction(lock=f"orders:{order_id}")

    def set_stock(self, sku: str, available: int) -> None:
        """Set the available quantity of ``sku``."""
        with self.db.transaction() as db:
            db.execute(
                text(
                    "INSERT INTO orders_stock (sku, available) VALUES (:sku, :n) "
                    "ON CONFLICT (sku) DO UPDATE SET available = excluded.available"
                ),
                {"sku": sku, "n": available},
            )

    def available(self, sku: str) -> int:
        """Return the available quantity of ``sku`` (0 if unknown)."""
        with self.db.transaction() as db:
            n = db.execute(
                text("SELECT available FROM orders_stock WHERE sku = :sku"), {"sku": sku}
            ).scalar()
        return int(n) if n is not None else 0

    def reserve(self, order_id: str, items: Sequence[LineItem]) -> str:
        """Take ``items`` out of stock for ``order_id``; return the reservation id."""
        with self._order_tx(order_id) as db:
            status = db.execute(
                text("SELECT status FROM orders_reservations WHERE order_id = :o"),
                {"o": order_id},
            ).scalar()
            reservation_id = derived_id("res", order_id)
            if status == "reserved":
                return reservation_id
            # SKUs in one order, so two orders never wait on each other's rows (deadlock).
            for item in sorted(items, key=lambda i: i.sku):
                taken = db.execute(
                    text(
                        "UPDATE orders_stock SET available = available - :q "
                        "WHERE sku = :sku AND available >= :q"
                    ),
                    {"q": item.quantity, "sku": item.sku},
                ).rowcount
                if not taken:  # raising rolls back what this loop already took
                    have = db.execute(
                        text("SELECT available FROM orders_stock WHERE sku = :sku"),
                        {"sku": item.sku},
                    ).scalar()
                    if have is None:
                        raise UnknownSku(f"unknown sku {item.sku!r}")
                    raise OutOfStock(
                        f"sku {item.sku!r}: {item.quantity} requested, {have} available"
                    )
            db.execute(
                text(
                    "INSERT INTO orders_reservations (order_id, reservation_id, items, status) "
                    "VALUES (:o, :r, :items, 'reserved') "
                    "ON CONFLICT (order_id) DO UPDATE SET status = 'reserved', items = :items"
                ),
                {
                    "o": order_id,
                    "r": reservation_id,
                    "items": json.dumps([[i.sku, i.quantity] for i in items]),
                },
            )
            _event(db, order_id, "reserved", reservation_id)
            return reservation_id

    def release(self, order_id: str) -> bool:
        """Return the order's reserved stock; ``False`` if it was released before.

        Raises:
            NothingToUndo: The order has no reservation at all.
        """
        with self._order_tx(order_id) as db:
            row = db.execute(
                text("SELECT items, status FROM orders_reservations WHERE order_id = :o"),
                {"o": order_id},
            ).one_or_none()
            if row is None:
                raise NothingToUndo(f"order {order_id}: no reservation recorded, nothing released")
            if row.status != "reserved":
                return False
            for sku, quantity in sorted(json.loads(row.items)):
                db.execute(
                    text("UPDATE orders_stock SET available = available + :q WHERE sku = :sku"),
                    {"q": quantity, "sku": sku},
                )
            db.execute(
                text("UPDATE orders_reservations SET status = 'released' WHERE order_id = :o"),
                {"o": order_id},
            )
            _event(db, order_id, "released")
            return True

    def screen(self, order_id: str, total_cents: int, limit_cents: int) -> None:
        """Refuse an order above the fraud limit; record that the order was screened."""
        if total_cents > limit_cents:
            # No customer data in the message: it is stored in the workflow's history.
            raise FraudSuspected(
                f"order {order_id}: total {total_cents} cents exceeds the screening limit "
                f"of {limit_cents}"
            )
        with self._order_tx(order_id) as db:
            _event(db, order_id, "screened")

    def charge(self, order_id: str, customer_id: str, amount_cents: int, token: str) -> str:
        """Charge the customer once per order; return the payment id."""
        with self._order_tx(order_id) as db:
            recorded = db.execute(
                text("SELECT payment_id FROM orders_payments WHERE order_id = :o"),
                {"o": order_id},
            ).scalar()
        if recorded is not None:
            return str(recorded)
        if token == DECLINED_TOKEN:
            raise PaymentDeclined(f"payment for order {order_id} was declined")
        payment_id = self.provider.charge(
            f"order-{order_id}/charge", order_id=order_id, amount_cents=amount_cents
        )
        with self._order_tx(order_id) as db:
            inserted = db.execute(
                text(
                    "INSERT INTO orders_payments "
                    "(order_id, payment_id, customer_id, amount_cents, status) "
                    "VALUES (:o, :p, :c, :a, 'charged') ON CONFLICT (order_id) DO NOTHING"
                ),
                {"o": order_id, "p": payment_id, "c": customer_id, "a": amount_cents},
            ).rowcount
            if inserted:
                _event(db, order_id, "charged", f"{amount_cents}")
        return payment_id

    def refund(self, order_id: str) -> bool:
        """Refund the order's charge; ``False`` if it was refunded before.

        Raises:
            NothingToUndo: The order has no recorded payment, or the provider has no charge.
        """
        with self._order_tx(order_id) as db:
            row = db.execute(
                text("SELECT payment_id, status FROM orders_payments WHERE order_id = :o"),
                {"o": order_id},
            ).one_or_none()
        if row is None:
            raise NothingToUndo(f"order {order_id}: no payment recorded, nothing refunded")
        if row.status == "refunded":
            return False
        if not self.provider.refund(row.payment_id):
            raise NothingToUndo(
                f"order {order_id}: the provider has no charge {row.payment_id}, nothing refunded"
            )
        with self._order_tx(order_id) as db:
            changed = db.execute(
                text(
                    "UPDATE orders_payments SET status = 'refunded' "
                    "WHERE order_id = :o AND status = 'charged'"
                ),
                {"o": order_id},
            ).rowcount
            if changed:
                _event(db, order_id, "refunded")
        return True

    def record_shipment(self, order_id: str, address: str) -> str:
        """Record the shipment once; return its tracking number."""
        tracking = derived_id("trk", order_id)
        with self._order_tx(order_id) as db:
            inserted = db.execute(
                text(
                    "INSERT INTO orders_shipments (order_id, tracking_number, address) "
                    "VALUES (:o, :t, :a) ON CONFLICT (order_id) DO NOTHING"
                ),
                {"o": order_id, "t": tracking, "a": address},
            ).rowcount
            if inserted:
                _event(db, order_id, "shipped", tracking)
        return tracking

    def notify(self, order_id: str, kind: str, message: str) -> bool:
        """Store a customer notification once per order and kind; ``True`` if new."""
        with self._order_tx(order_id) as db:
            inserted = db.execute(
                text(
                    "INSERT INTO orders_notifications (order_id, kind, message) "
                    "VALUES (:o, :k, :m) ON CONFLICT (order_id, kind) DO NOTHING"
                ),
                {"o": order_id, "k": kind, "m": message},
            ).rowcount
            if inserted:
                _event(db, order_id, f"notified:{kind}")
        return bool(inserted)

    def events(self, order_id: str) -> list[str]:
        """Return the kinds of the order's events, oldest first."""
        with self.db.transaction() as db:
            rows = db.execute(
                text("SELECT kind FROM orders_events WHERE order_id = :o ORDER BY seq"),
                {"o": order_id},
            ).scalars()
            return [str(kind) for kind in rows]


def _event(db: Connection, order_id: str, kind: str, detail: str = "") -> None:
    db.execute(
        text("INSERT INTO orders_events (order_id, kind, detail) VALUES (:o, :k, :d)"),
        {"o": order_id, "k": kind, "d": detail},
    )
