"""Activities of the order saga, each idempotent by order id through the ledger."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError
from workerkit import activities_of, database_call, open_database

from orders.ledger import Ledger, LedgerError
from orders.models import ChargeRequest, Notification, ReserveRequest, ScreenRequest, ShipRequest
from orders.settings import OrdersSettings

_P = ParamSpec("_P")
_R = TypeVar("_R")


async def _call(fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """Run a ledger call off the event loop; business refusals become non-retryable.

    A database that is down fails the attempt retryably (``database_call``): the activity's
    retry policy brings it back once the database answers.
    """
    try:
        return await database_call(fn, *args, **kwargs)
    except LedgerError as err:
        raise ApplicationError(str(err), type=err.error_type, non_retryable=True) from err


class OrderActivities:
    """The saga's steps and their compensations, bound to one ledger."""

    def __init__(
        self, ledger: Ledger, *, pack_seconds_per_item: float, fraud_limit_cents: int
    ) -> None:
        self.ledger = ledger
        self.pack_seconds_per_item = pack_seconds_per_item
        self.fraud_limit_cents = fraud_limit_cents

    @activity.defn
    async def reserve_inventory(self, req: ReserveRequest) -> str:
        return await _call(self.ledger.reserve, req.order_id, req.items)

    @activity.defn
    async def release_inventory(self, order_id: str) -> bool:
        return await _call(self.ledger.release, order_id)

    @activity.defn
    async def screen_order(self, req: ScreenRequest) -> None:
        await _call(self.ledger.screen, req.order_id, req.total_cents, self.fraud_limit_cents)

    @activity.defn
    async def charge_payment(self, req: ChargeRequest) -> str:
        return await _call(
            self.ledger.charge, req.order_id, req.customer_id, req.amount_cents, req.payment_token
        )

    @activity.defn
    async def refund_payment(self, order_id: str) -> bool:
        return await _call(self.ledger.refund, order_id)

    @activity.defn
    async def ship_order(self, req: ShipRequest) -> str:
        """Pack each unit, heartbeating progress; a retry resumes after the last packed unit."""
        units = sum(i.quantity for i in req.items)
        details = activity.info().heartbeat_details
        packed = int(details[0]) if details else 0
        if packed:
            activity.logger.info("resuming packing", extra={"packed": packed, "units": units})
        while packed < units:
            await asyncio.sleep(self.pack_seconds_per_item)
            packed += 1
            activity.heartbeat(packed)
        address = ", ".join(str(v) for v in dataclasses.asdict(req.address).values())
        return await _call(self.ledger.record_shipment, req.order_id, address)

    @activity.defn
    async def notify_customer(self, note: Notification) -> bool:
        return await _call(self.ledger.notify, note.order_id, note.kind, note.message)


def create_activities(settings: OrdersSettings | None = None) -> list[Callable[..., Any]]:
    """Open the ledger in the process's database; bind the activities to it and ``settings``
    (default: read from the environment)."""
    settings = settings or OrdersSettings.from_env()
    ledger = Ledger(open_database(application_name="orders"))
    activities = OrderActivities(
        ledger,
        pack_seconds_per_item=settings.pack_seconds_per_item,
        fraud_limit_cents=settings.fraud_limit_cents,
    )
    return activities_of(activities)
