"""How a queue's new build is rolled out: the steps, how long each is watched, its limits.

A :class:`RolloutPolicy` is declared on the :class:`~workerkit.Queue` (its defaults) and may
be overridden per rollout, by ``fleet deploy rollout``'s options or the chart's values.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal, get_args

from workerkit._env_settings import parse_duration
from workerkit._exceptions import ConfigurationError

__all__ = [
    "INSUFFICIENT_DATA",
    "InsufficientData",
    "PromCheck",
    "RolloutPolicy",
    "activity_failure_ratio",
    "parse_steps",
]

# What a step does when too few executions finished to judge it, once its extensions are used.
InsufficientData = Literal["hold", "rollback"]
INSUFFICIENT_DATA: tuple[str, ...] = get_args(InsufficientData)

_CHECK_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True, kw_only=True)
class PromCheck:
    """A PromQL measure of one build, judged at every step where the fleet has Prometheus.

    Attributes:
        name: Shown in verdicts (``activity_failure_ratio``).
        query: PromQL returning one number for one build. ``$build_id``, ``$queue``,
            ``$task_queue`` and ``$window`` (the step's window, e.g. ``120s``) are
            replaced before it is sent.
        max: The step fails when the new build's value is above this.
    """

    name: str
    query: str
    max: float

    def __post_init__(self) -> None:
        if not _CHECK_NAME.match(self.name):
            raise ConfigurationError(
                f"rollout check name {self.name!r}: lower-case letters, digits and '_'"
            )
        if "$build_id" not in self.query:
            raise ConfigurationError(
                f"rollout check {self.name!r}: its query must select one build ($build_id)"
            )

    def render(self, *, build_id: str, queue: str, task_queue: str, window: timedelta) -> str:
        """The query for one build over ``window``."""
        seconds = max(int(window.total_seconds()), 1)
        return (
            self.query.replace("$build_id", build_id)
            .replace("$task_queue", task_queue)
            .replace("$queue", queue)
            .replace("$window", f"{seconds}s")
        )


# The SDK's series carry no build id: joined on the worker process to the gauge every worker
# exports per task queue, each series counts for the build its worker runs.
_OF_BUILD = (
    "* on (job, instance, task_queue) group_left (build_id) "
    'workerkit_worker_build_info{build_id="$build_id"}'
)


def activity_failure_ratio(max: float) -> PromCheck:
    """A check of the new build's failed activity attempts over all of its attempts.

    Temporal retries failed activities, so a build that breaks a dependency call shows here
    before any execution fails.
    """
    failed = 'rate(temporal_activity_execution_failed{task_queue="$task_queue"}[$window])'
    attempts = 'rate(temporal_activity_execution_latency_count{task_queue="$task_queue"}[$window])'
    return PromCheck(
        name="activity_failure_ratio",
        query=f"sum({failed} {_OF_BUILD}) / sum({attempts} {_OF_BUILD})",
        max=max,
    )


def parse_steps(text: str) -> tuple[int, ...]:
    """Parse ``10,50,100`` into ramp percentages.

    Raises:
        ValueError: Not integers, outside 1..100, not increasing, or not ending at 100.
    """
    try:
        steps = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(
            f"steps {text!r}: comma-separated whole percentages, e.g. 10,50,100"
        ) from None
    return _checked_steps(steps)


def _checked_steps(steps: Sequence[int]) -> tuple[int, ...]:
    steps = tuple(steps)
    if not steps:
        raise ValueError("steps: at least one (100 makes the build current)")
    if any(not 1 <= s <= 100 for s in steps):
        raise ValueError(f"steps {','.join(map(str, steps))}: each must be within 1..100")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise ValueError(f"steps {','.join(map(str, steps))}: must increase")
    if steps[-1] != 100:
        raise ValueError(
            f"steps {','.join(map(str, steps))}: the last must be 100 (the build becomes current)"
        )
    return steps


@dataclass(frozen=True, kw_only=True)
class RolloutPolicy:
    """A queue's rollout defaults (``fleet deploy rollout``).

    Attributes:
        steps: Ramp percentages, increasing, ending at 100 (current). The build is judged
            after each, and once more after it became current (the bake).
        pause: How long each step is watched before it is judged.
        max_failure_ratio: A step fails when the new build's share of failed or timed-out
            executions (of those that finished) exceeds the current build's by more than this.
        min_executions: Finished executions of the new build a step needs to be judged.
        max_extensions: How many more pauses a step with too few executions gets.
        insufficient_data: Then: ``hold`` (wait for an operator's resume, promote-now or
            abort) or ``rollback``.
        gate_workflow: A workflow type of the queue, taking no argument, run on the new
            build before any traffic moves (a smoke test): the rollout is refused unless it
            completes. The same type serves temporal-worker-controller's
            ``rollout.gate.workflowType`` in the chart's controller mode.
        gate_timeout: How long the gate workflow may run.
        checks: PromQL measures judged at every step where Prometheus is configured.
        retire_after: After a completed rollout, how long older builds are kept before
            drained ones are retired (deleted from the server's deployment).
        replay_sample: Recent server executions the replay gate replays at each step.
    """

    steps: tuple[int, ...] = (10, 50, 100)
    pause: timedelta = timedelta(minutes=5)
    max_failure_ratio: float = 0.05
    min_executions: int = 20
    max_extensions: int = 3
    insufficient_data: InsufficientData = "hold"
    gate_workflow: str | None = None
    gate_timeout: timedelta = timedelta(minutes=5)
    checks: tuple[PromCheck, ...] = field(default_factory=tuple)
    retire_after: timedelta = timedelta(hours=1)
    replay_sample: int = 20

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "steps", _checked_steps(self.steps))
        except ValueError as err:
            raise ConfigurationError(str(err)) from None
        if not 0 <= self.max_failure_ratio <= 1:
            raise ConfigurationError(
                f"max_failure_ratio {self.max_failure_ratio:g}: must be within 0..1"
            )
        if self.pause <= timedelta():
            raise ConfigurationError("pause: must be longer than 0s")
        if self.min_executions < 0 or self.max_extensions < 0 or self.replay_sample < 0:
            raise ConfigurationError("min_executions, max_extensions, replay_sample: >= 0")
        if self.insufficient_data not in INSUFFICIENT_DATA:
            raise ConfigurationError(
                f"insufficient_data {self.insufficient_data!r}: one of "
                + ", ".join(INSUFFICIENT_DATA)
            )
        if self.retire_after < timedelta():
            raise ConfigurationError("retire_after: must not be negative")
        names = [c.name for c in self.checks]
        if len(names) != len(set(names)):
            raise ConfigurationError("rollout checks: each name once")

    def overridden(
        self,
        *,
        steps: str | None = None,
        pause: str | None = None,
        max_failure_ratio: float | None = None,
        min_executions: int | None = None,
        retire_after: str | None = None,
        insufficient_data: str | None = None,
    ) -> RolloutPolicy:
        """This policy with the given command-line values in place of its own.

        Raises:
            ValueError: A value does not parse or is out of range (names the option).
        """
        changes: dict[str, object] = {}
        if steps is not None:
            changes["steps"] = parse_steps(steps)
        for option, text in (("pause", pause), ("retire_after", retire_after)):
            if text is not None:
                try:
                    changes[option] = parse_duration(text)
                except ValueError:
                    raise ValueError(
                        f"--{option.replace('_', '-')} {text!r}: not a duration (e.g. 30s, 5m)"
                    ) from None
        if max_failure_ratio is not None:
            if not 0 <= max_failure_ratio <= 1:
                raise ValueError(f"--max-failure-ratio {max_failure_ratio:g}: must be within 0..1")
            changes["max_failure_ratio"] = max_failure_ratio
        if min_executions is not None:
            if min_executions < 0:
                raise ValueError(f"--min-executions {min_executions}: must be 0 or more")
            changes["min_executions"] = min_executions
        if insufficient_data is not None:
            changes["insufficient_data"] = insufficient_data
        try:
            return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
        except ConfigurationError as err:
            raise ValueError(str(err)) from None
