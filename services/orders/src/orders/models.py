"""Typed inputs and outputs of the order workflow and its activities."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class LineItem:
    sku: str
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True)
class Address:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str  # ISO 3166-1 alpha-2, e.g. "FR"


@dataclass(frozen=True)
class Order:
    """What a customer submits."""

    order_id: str
    customer_id: str
    items: list[LineItem]
    shipping_address: Address
    payment_token: str
    # How long the order waits for the confirmation signal before it is compensated.
    confirmation_timeout_seconds: float = 3600.0

    @property
    def total_cents(self) -> int:
        return sum(i.quantity * i.unit_price_cents for i in self.items)


class Stage(StrEnum):
    RECEIVED = "received"
    RESERVING = "reserving"
    SCREENING = "screening"
    CHARGING = "charging"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    SHIPPING = "shipping"
    NOTIFYING = "notifying"
    COMPLETED = "completed"
    COMPENSATING = "compensating"
    FAILED = "failed"


@dataclass
class OrderStatus:
    """Answer of the ``status`` query."""

    order_id: str
    stage: Stage
    shipping_address: Address
    confirmed: bool = False
    payment_id: str | None = None
    tracking_number: str | None = None
    compensations: list[str] = field(default_factory=list)
    # Compensations that could not undo their step, each with why: reported, never hidden.
    uncompensated: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class OrderResult:
    order_id: str
    payment_id: str
    charged_cents: int
    tracking_number: str
    shipped_to: Address


@dataclass(frozen=True)
class Confirmation:
    """Payload of the ``confirm`` signal."""

    confirmed_by: str
    approved: bool = True


@dataclass(frozen=True)
class ReserveRequest:
    order_id: str
    items: list[LineItem]


@dataclass(frozen=True)
class ScreenRequest:
    order_id: str
    customer_id: str
    total_cents: int


@dataclass(frozen=True)
class ChargeRequest:
    order_id: str
    customer_id: str
    amount_cents: int
    payment_token: str


@dataclass(frozen=True)
class ShipRequest:
    order_id: str
    items: list[LineItem]
    address: Address


@dataclass(frozen=True)
class Notification:
    order_id: str
    kind: str
    message: str


def address_problem(address: Address) -> str | None:
    """Return why ``address`` cannot be shipped to, or ``None`` if it can."""
    for name in ("name", "line1", "city", "postal_code"):
        if not str(getattr(address, name)).strip():
            return f"shipping address {name} is empty"
    if len(address.country) != 2 or not address.country.isalpha() or not address.country.isupper():
        return f"country {address.country!r} is not an ISO 3166-1 alpha-2 code such as 'FR'"
    return None


MAX_CONFIRMATION_TIMEOUT_S = 30 * 86400.0


def order_problem(order: Order) -> str | None:
    """Return why ``order`` can never be processed, or ``None`` if it is well-formed."""
    if not order.order_id.strip():
        return "order_id is empty"
    if not order.customer_id.strip():
        return "customer_id is empty"
    if not order.payment_token.strip():
        return "payment_token is empty"
    if not order.items:
        return "the order has no items"
    for item in order.items:
        if item.quantity <= 0:
            return f"sku {item.sku!r}: quantity must be positive, got {item.quantity}"
        if item.unit_price_cents < 0:
            return f"sku {item.sku!r}: unit price must not be negative"
    if not 0 < order.confirmation_timeout_seconds <= MAX_CONFIRMATION_TIMEOUT_S:
        # Checked before anything is charged: a timer Temporal cannot represent would fail
        # the workflow task only after the payment went through.
        return (
            "confirmation_timeout_seconds must be positive and at most "
            f"{MAX_CONFIRMATION_TIMEOUT_S:g} (30 days)"
        )
    return address_problem(order.shipping_address)
