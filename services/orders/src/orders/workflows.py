"""The order saga workflow."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workerkit import failure_reason, invalid_input

    from orders.activities import OrderActivities
    from orders.metrics import COMPENSATIONS, ORDER_VALUE
    from orders.models import (
        Address,
        ChargeRequest,
        Confirmation,
        Notification,
        Order,
        OrderResult,
        OrderStatus,
        ReserveRequest,
        ScreenRequest,
        ShipRequest,
        Stage,
        address_problem,
        order_problem,
    )

LEDGER_TIMEOUT = timedelta(seconds=30)
# Ledger steps retry until this deadline, backing off to every 30 s: a database outage
# shorter than it only delays an order; a business refusal ends the retries at once.
LEDGER_DEADLINE = timedelta(minutes=10)
RESERVE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["OutOfStock", "UnknownSku"],
)
FRAUD_SCREENING_PATCH = "fraud-screening"
SCREEN_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["FraudSuspected"],
)
CHARGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["PaymentDeclined"],
)
SHIP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=10)
SHIP_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
# Compensation must eventually happen: retry without limit, backing off to once a minute.
COMPENSATE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60)
)


@workflow.defn
class OrderWorkflow:
    """Reserve → screen → charge → await confirmation → ship → notify; compensate on failure."""

    @workflow.init
    def __init__(self, order: Order) -> None:
        self._order = order
        self._status = OrderStatus(
            order_id=order.order_id, stage=Stage.RECEIVED, shipping_address=order.shipping_address
        )
        self._confirmation: Confirmation | None = None

    @workflow.run
    async def run(self, order: Order) -> OrderResult:
        problem = order_problem(order)
        if problem:
            self._status.stage, self._status.error = Stage.FAILED, problem
            raise invalid_input("order", problem)
        compensations: list[tuple[str, object]] = []
        try:
            self._status.stage = Stage.RESERVING
            await workflow.execute_activity_method(
                OrderActivities.reserve_inventory,
                ReserveRequest(order.order_id, order.items),
                start_to_close_timeout=LEDGER_TIMEOUT,
                schedule_to_close_timeout=LEDGER_DEADLINE,
                retry_policy=RESERVE_RETRY,
            )
            compensations.append(("release_inventory", OrderActivities.release_inventory))

            # Added after orders were already running: runs that started before this
            # change replay without the step (their histories have no marker).
            if workflow.patched(FRAUD_SCREENING_PATCH):
                self._status.stage = Stage.SCREENING
                await workflow.execute_activity_method(
                    OrderActivities.screen_order,
                    ScreenRequest(order.order_id, order.customer_id, order.total_cents),
                    start_to_close_timeout=LEDGER_TIMEOUT,
                    schedule_to_close_timeout=LEDGER_DEADLINE,
                    retry_policy=SCREEN_RETRY,
                )

            self._status.stage = Stage.CHARGING
            payment_id = await workflow.execute_activity_method(
                OrderActivities.charge_payment,
                ChargeRequest(
                    order.order_id, order.customer_id, order.total_cents, order.payment_token
                ),
                start_to_close_timeout=LEDGER_TIMEOUT,
                schedule_to_close_timeout=LEDGER_DEADLINE,
                retry_policy=CHARGE_RETRY,
            )
            self._status.payment_id = payment_id
            compensations.append(("refund_payment", OrderActivities.refund_payment))

            self._status.stage = Stage.AWAITING_CONFIRMATION
            try:
                await workflow.wait_condition(
                    lambda: self._confirmation is not None,
                    timeout=timedelta(seconds=order.confirmation_timeout_seconds),
                )
            except TimeoutError:
                raise ApplicationError(
                    f"no confirmation within {order.confirmation_timeout_seconds:g}s",
                    type="ConfirmationTimeout",
                    non_retryable=True,
                ) from None
            assert self._confirmation is not None
            if not self._confirmation.approved:
                raise ApplicationError(
                    f"rejected by {self._confirmation.confirmed_by}",
                    type="OrderRejected",
                    non_retryable=True,
                )
            self._status.confirmed = True

            self._status.stage = Stage.SHIPPING
            tracking = await workflow.execute_activity_method(
                OrderActivities.ship_order,
                ShipRequest(order.order_id, order.items, self._status.shipping_address),
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=SHIP_HEARTBEAT_TIMEOUT,
                retry_policy=SHIP_RETRY,
            )
            self._status.tracking_number = tracking
        except (ActivityError, ApplicationError) as err:
            await self._compensate(compensations, failure_reason(err))
            ORDER_VALUE.record(order.total_cents, outcome="failed")
            outcome = f"compensated: {', '.join(self._status.compensations) or 'nothing to undo'}"
            if self._status.uncompensated:
                outcome += f"; NOT compensated: {'; '.join(self._status.uncompensated)}"
            raise ApplicationError(
                f"order {order.order_id} failed: {failure_reason(err)}; {outcome}",
                type="OrderFailed",
                non_retryable=True,
            ) from err

        self._status.stage = Stage.NOTIFYING
        try:
            await workflow.execute_activity_method(
                OrderActivities.notify_customer,
                Notification(order.order_id, "shipped", f"Your order ships as {tracking}."),
                start_to_close_timeout=LEDGER_TIMEOUT,
                retry_policy=NOTIFY_RETRY,
            )
        except ActivityError as err:
            # The order has shipped: a lost notification is not worth undoing it.
            workflow.logger.warning("notification failed", extra={"error": failure_reason(err)})
        self._status.stage = Stage.COMPLETED
        ORDER_VALUE.record(order.total_cents, outcome="completed")
        return OrderResult(
            order.order_id, payment_id, order.total_cents, tracking, self._status.shipping_address
        )

    async def _compensate(self, steps: list[tuple[str, object]], reason: str) -> None:
        self._status.stage, self._status.error = Stage.COMPENSATING, reason
        for name, step in reversed(steps):
            try:
                await workflow.execute_activity_method(
                    step,  # type: ignore[arg-type]
                    self._order.order_id,
                    start_to_close_timeout=LEDGER_TIMEOUT,
                    retry_policy=COMPENSATE_RETRY,
                )
            except ActivityError as err:
                # Only a refusal ends the retries (e.g. nothing recorded to undo): say so,
                # and still undo the other steps.
                self._status.uncompensated.append(f"{name} ({failure_reason(err)})")
                COMPENSATIONS.add(step=name, result="not_undone")
                continue
            self._status.compensations.append(name)
            COMPENSATIONS.add(step=name, result="undone")
        self._status.stage = Stage.FAILED

    @workflow.signal
    def confirm(self, confirmation: Confirmation) -> None:
        """Confirm (or reject, with ``approved=False``) the order."""
        if self._confirmation is None:
            self._confirmation = confirmation

    @workflow.query
    def status(self) -> OrderStatus:
        return self._status

    @workflow.update
    def change_shipping_address(self, address: Address) -> OrderStatus:
        """Ship to ``address`` instead; allowed until shipping starts."""
        self._status.shipping_address = address
        return self._status

    @change_shipping_address.validator
    def _validate_address(self, address: Address) -> None:
        if self._status.stage in (
            Stage.SHIPPING,
            Stage.NOTIFYING,
            Stage.COMPLETED,
            Stage.COMPENSATING,
            Stage.FAILED,
        ):
            raise ValueError(f"too late to change the address: order is {self._status.stage}")
        problem = address_problem(address)
        if problem:
            raise ValueError(problem)
