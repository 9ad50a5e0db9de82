"""The orders queue declaration: registered through the ``workerkit.queues`` entry point."""

from temporalio.common import VersioningBehavior
from workerkit import Fairness, Queue, RateLimits, RolloutPolicy, Tuning, activity_failure_ratio

from orders.activities import create_activities
from orders.ids import order_workflow_id
from orders.metrics import COMPENSATIONS, ORDER_VALUE
from orders.workflows import OrderWorkflow

QUEUE = Queue(
    name="orders",
    version=1,
    description="Order saga with compensation, confirmation signal, status query, address update.",
    workflows=[OrderWorkflow],
    activities=create_activities,
    tuning=Tuning(max_concurrent_activities=50),
    workflow_ids={OrderWorkflow: lambda order: order_workflow_id(order.order_id)},
    # An order finishes within its confirmation timeout, on the build that took it.
    versioning=VersioningBehavior.PINNED,
    migrations="orders.migrations",
    histories="orders.histories",
    # ship_order packs unit by unit for up to 30 minutes, heartbeating (the ledger calls take
    # seconds): a worker must not be scaled away under a shipment in progress.
    shape="long-activities",
    # Declined payments fail their activity for good, a few percent of attempts; a build that
    # breaks the ledger or the provider fails far more (judged where Prometheus is given).
    rollout=RolloutPolicy(checks=(activity_failure_ratio(max=0.25),)),
    metrics=[ORDER_VALUE, COMPENSATIONS],
    # One customer's thousands of orders must not hold every other customer's behind them:
    # the backlog is shared round-robin between customers (fleet limits apply, and the
    # server's matching.enableFairness).
    fairness=Fairness(key="customer_id"),
    # The payment provider and the ledger take at most this many calls a second from the
    # whole fleet, however many workers run (an environment overrides it: fleet limits apply
    # --activity-rate, or the chart's queues.orders.limits).
    rate_limits=RateLimits(activity_tasks=500.0),
)
