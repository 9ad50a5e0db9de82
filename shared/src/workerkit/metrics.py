"""A service's own metrics: declared once on its :class:`~workerkit.Queue`, recorded anywhere.

Declare them in the queue's package and list them on its declaration::

    ORDER_VALUE = metrics.Histogram(
        "orders_value_cents", "Value of orders, by how they ended.",
        labels=("outcome",), buckets=(1_000, 10_000, 100_000),
    )
    QUEUE = Queue(name="orders", ..., metrics=[ORDER_VALUE])

then record from a workflow or an activity: ``ORDER_VALUE.record(total, outcome="completed")``.

Recording goes through the SDK's metric meter of the workflow or activity being run, so:

- every series carries ``namespace`` and ``task_queue`` (and ``workflow_type`` or
  ``activity_type``), the labels every fleet dashboard selects on; the queue's dashboard row
  (generated from the declarations) shows them with no query written by hand;
- a workflow that replays does not count again (the SDK's workflow meter records nothing
  while replaying), so a recording in workflow code is as deterministic as the code around it;
- they are served by the worker's ``/metrics`` beside the SDK's own series.

Conventions, checked when the queue is declared: a metric's name starts with its queue's
name and ``_``; a counter's name ends in ``_total``; labels are the metric's own, never one
the SDK or Prometheus sets. A recording never fails the work it measures: one that breaks the
declaration (labels missing or unknown, a negative count, no workflow or activity running) is
dropped with one error log per metric and problem.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, TypeVar

from temporalio import activity, workflow
from temporalio.common import MetricMeter

__all__ = [
    "RESERVED_LABELS",
    "Counter",
    "Gauge",
    "Histogram",
    "Metric",
    "bucket_overrides",
    "check_declared",
]

_log = logging.getLogger("workerkit.metrics")

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Set by the SDK's meters, by the Prometheus scrape or by histograms: a service's label of
# the same name would be overwritten or would split one series into two.
RESERVED_LABELS = frozenset(
    {
        "namespace",
        "task_queue",
        "workflow_type",
        "activity_type",
        "service_name",
        "instance",
        "job",
        "le",
        "quantile",
        "build_id",
    }
)
# One log line per metric and problem: a recording inside a loop must not flood the log.
_reported: set[tuple[str, str]] = set()

_Instrument = TypeVar("_Instrument")
_Value = TypeVar("_Value", int, float)


@dataclass(frozen=True)
class Metric:
    """What every kind of metric declares.

    Attributes:
        name: The series name, starting with the queue's name and ``_``.
        description: One sentence, shown as the series' help and as the panel's description.
        labels: The names of the labels every recording gives, in the panel's legend order.
        unit: The unit the values are in, e.g. ``seconds``, ``bytes``, ``cents``.
    """

    kind: ClassVar[Literal["counter", "histogram", "gauge"]]

    name: str
    description: str
    labels: tuple[str, ...] = ()
    unit: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"metric {self.name!r}: a name is lower-case letters, digits and underscores, "
                "starting with a letter"
            )
        for label in self.labels:
            if not _NAME.match(label):
                raise ValueError(f"metric {self.name!r}: label {label!r} is not a valid name")
            if label in RESERVED_LABELS:
                raise ValueError(
                    f"metric {self.name!r}: label {label!r} is set by the SDK or Prometheus; "
                    "choose another name"
                )
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"metric {self.name!r}: a label is listed twice")

    def _attributes(self, labels: dict[str, str]) -> dict[str, str] | None:
        if set(labels) != set(self.labels):
            missing = sorted(set(self.labels) - set(labels))
            unknown = sorted(set(labels) - set(self.labels))
            _report(self.name, f"labels: missing {missing}, unknown {unknown}")
            return None
        return {k: str(v) for k, v in labels.items()}

    def _safely(self, record: Callable[[], None]) -> None:
        # The SDK refuses a value it cannot hold (not a whole number for a counter, negative
        # for any kind, too large): dropped and logged, never the workflow task's failure.
        try:
            record()
        except (TypeError, ValueError, OverflowError) as err:
            _report(self.name, f"the SDK refused the value: {err}")

    def _record(
        self,
        create: Callable[[MetricMeter], Callable[[str, str, str], _Instrument]],
        op: Callable[[_Instrument], Callable[[_Value, dict[str, str]], None]],
        value: _Value,
        labels: dict[str, str],
    ) -> None:
        # create picks the meter's factory of this kind, op the instrument's recording call.
        attributes, meter = self._attributes(labels), self._meter()
        if attributes is not None and meter is not None:
            self._safely(
                lambda: op(create(meter)(self.name, self.description, self.unit))(value, attributes)
            )

    def _meter(self) -> MetricMeter | None:
        # The workflow's meter first: workflow code runs in no activity context.
        if workflow.in_workflow():
            return workflow.metric_meter()
        if activity.in_activity():
            return activity.metric_meter()
        _report(self.name, "recorded outside a workflow or an activity")
        return None


def _report(name: str, problem: str) -> None:
    if (name, problem) not in _reported:
        _reported.add((name, problem))
        _log.error("metric %s not recorded: %s", name, problem)


@dataclass(frozen=True)
class Counter(Metric):
    """A count that only goes up, e.g. payments declined; dashboards show its rate."""

    kind: ClassVar[Literal["counter"]] = "counter"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.name.endswith("_total"):
            raise ValueError(f"metric {self.name!r}: a counter's name ends in _total")

    def add(self, value: int = 1, /, **labels: str) -> None:
        """Add ``value`` (a whole number, not negative) with the declared ``labels``."""
        if value < 0:
            _report(self.name, "a counter cannot go down")
            return
        self._record(lambda meter: meter.create_counter, lambda counter: counter.add, value, labels)


@dataclass(frozen=True)
class Histogram(Metric):
    """A distribution of values, e.g. an order's value; dashboards show its quantiles.

    Attributes:
        buckets: The upper bounds of the buckets, in ``unit``, ascending.
    """

    kind: ClassVar[Literal["histogram"]] = "histogram"

    buckets: tuple[float, ...] = field(
        default=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.buckets or list(self.buckets) != sorted(set(self.buckets)):
            raise ValueError(f"metric {self.name!r}: buckets must be ascending and distinct")

    def record(self, value: float, /, **labels: str) -> None:
        """Record one ``value`` (not negative) with the declared ``labels``."""
        self._record(
            lambda meter: meter.create_histogram_float, lambda hist: hist.record, value, labels
        )


@dataclass(frozen=True)
class Gauge(Metric):
    """A value that goes up and down, as last set by one worker, e.g. a batch's size."""

    kind: ClassVar[Literal["gauge"]] = "gauge"

    def set(self, value: float, /, **labels: str) -> None:
        """Set the value (not negative: the SDK's gauges hold none) for the declared ``labels``."""
        self._record(lambda meter: meter.create_gauge_float, lambda gauge: gauge.set, value, labels)


def check_declared(queue: str, metrics: Sequence[Metric]) -> str | None:
    """What is wrong with ``queue``'s declared ``metrics``; ``None`` when nothing is."""
    seen: set[str] = set()
    for metric in metrics:
        if not isinstance(metric, Metric):
            return f"{metric!r} is not a workerkit.metrics Counter, Histogram or Gauge"
        if not metric.name.startswith(f"{queue}_"):
            return f"metric {metric.name!r} must start with the queue's name: {queue}_"
        if metric.name in seen:
            return f"metric {metric.name!r} is declared twice"
        seen.add(metric.name)
    return None


def bucket_overrides(metrics: Sequence[Metric]) -> dict[str, Sequence[float]]:
    """The histogram buckets the SDK's Prometheus exporter must use, by series name."""
    return {m.name: m.buckets for m in metrics if isinstance(m, Histogram)}
