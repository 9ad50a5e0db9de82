"""The orders queue's own metrics, recorded by the saga (see ``workerkit.metrics``)."""

from workerkit.metrics import Counter, Histogram

ORDER_VALUE = Histogram(
    "orders_value_cents",
    "Value of the orders the saga finished, by outcome (completed, or failed and compensated).",
    labels=("outcome",),
    unit="cents",
    buckets=(500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 500_000),
)
COMPENSATIONS = Counter(
    "orders_compensations_total",
    "Compensation steps of failed orders, by step and result (undone, or not undone: a refusal).",
    labels=("step", "result"),
)
