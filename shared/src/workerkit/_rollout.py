"""Progressive delivery as a durable workflow: ramp a build in steps, judge each, roll back.

``fleet deploy rollout`` starts :class:`RolloutWorkflow` on the fleet operations task queue
(:data:`OPS_TASK_QUEUE`), which every ``fleet worker`` process serves (see ``_ops``), so a
rollout needs nothing beyond the server and the queue's own workers, and survives the CLI,
any one worker and a server restart. One rollout per deployment at a time: its workflow id
is :func:`rollout_id`.

The sequence: check the deployment (the new build polls, nothing else ramps, room for one
more version); then, before every step, the replay gate on the new build's own code (an
activity on the build's gate task queue, so it runs where that code is installed) and, once,
the queue's gate workflow pinned to the new build; per step: set the ramp (100: make it
current), watch it for the pause, judging at intervals (workflow tasks failing on the new
build roll back at once), and judge the window; after the last step, bake once more at
100%. A failing judgement rolls back: the ramp is cancelled, or the previous build is made
current again. A completed rollout hands its older builds to :class:`RetireBuildsWorkflow`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

__all__ = [
    "CONTROL_ACTIONS",
    "OPS_TASK_QUEUE",
    "CheckSpec",
    "GateResult",
    "Judgement",
    "Measure",
    "PrepareResult",
    "RetireBuildsWorkflow",
    "RetireRequest",
    "RetireResult",
    "RolloutRequest",
    "RolloutStatus",
    "RolloutWorkflow",
    "RouteRequest",
    "StepVerdict",
    "gate_task_queue",
    "rollout_id",
]

# Bumped when a change to these workflows would not replay their running executions: the
# operations task queue is unversioned, so old and new workerkit serve it side by side.
OPS_TASK_QUEUE = "fleet-ops-v1"
CONTROL_ACTIONS = ("abort", "pause", "resume", "promote-now")
# Activities that found a decision refused for good raise ApplicationError of these types.
ROUTING_CHANGED = "RoutingChanged"
REFUSED = "Refused"

_QUICK = RetryPolicy(maximum_attempts=5, non_retryable_error_types=[ROUTING_CHANGED, REFUSED])


def rollout_id(deployment: str) -> str:
    """The workflow id of ``deployment``'s rollout: one runs at a time."""
    return f"fleet-rollout-{deployment}"


def gate_task_queue(deployment: str, build_id: str) -> str:
    """The task queue only workers of ``build_id`` poll, for the gate run on its code."""
    return f"fleet-gate-{deployment}-{build_id}"


@dataclass
class CheckSpec:
    """A PromQL check as the workflow carries it (see :class:`~workerkit.PromCheck`)."""

    name: str
    query: str
    max: float


@dataclass
class RolloutRequest:
    """What to roll out and how: the queue's policy with the command line's overrides."""

    queue: str
    deployment: str
    task_queue: str
    build_id: str
    steps: list[int]
    pause_seconds: float
    max_failure_ratio: float
    min_executions: int
    max_extensions: int
    insufficient_data: str
    gate_workflow: str | None = None
    gate_timeout_seconds: float = 300.0
    checks: list[CheckSpec] = field(default_factory=list)
    prometheus_url: str | None = None
    retire_after_seconds: float = 3600.0
    replay_sample: int = 20
    version_limit: int = 100
    requested_by: str = ""


@dataclass
class Measure:
    """One number a step is judged by, against its limit."""

    name: str
    value: float
    limit: float
    passed: bool
    detail: str = ""

    def describe(self) -> str:
        """``failure_ratio 0.33 > limit 0.05 (10 of 30 failed)``."""
        op = "<=" if self.passed else ">"
        text = f"{self.name} {self.value:.4g} {op} limit {self.limit:.4g}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass
class Judgement:
    """A judge activity's answer for one window."""

    measures: list[Measure]
    failed: bool
    insufficient: bool
    finished: int
    reason: str = ""


@dataclass
class StepVerdict:
    """What was decided about one step (step 0: the gate before traffic moves)."""

    step: int
    ramp: int
    outcome: str  # passed, failed, extended, insufficient, held, skipped
    summary: str
    at: str
    measures: list[Measure] = field(default_factory=list)
    # gate: the replay gate (and gate workflow) before the step's ramp; judgement: the window.
    kind: str = "judgement"


@dataclass
class RolloutStatus:
    """A rollout as ``fleet deploy status`` shows it (the workflow's ``status`` query)."""

    queue: str
    deployment: str
    build_id: str
    previous_build_id: str | None
    steps: list[int]
    phase: str = "preparing"  # preparing, gate, ramping, baking, holding, done
    step: int = 0
    ramp: int = 0
    paused: bool = False
    outcome: str | None = None  # promoted, rolled_back, refused, aborted, not_ready
    reason: str = ""
    started_at: str = ""
    verdicts: list[StepVerdict] = field(default_factory=list)


@dataclass
class PrepareResult:
    """The deployment as the rollout found it."""

    current_build_id: str | None
    not_ready: str = ""
    refused: str = ""
    already_current: bool = False


@dataclass
class RouteRequest:
    """Set the new build's share (0: cancel its ramp; 100: current), or restore a build.

    ``expect_current`` is the build that must be current when the change is made: routing
    changed by anyone else since the rollout decided fails the change (``RoutingChanged``).
    """

    deployment: str
    task_queue: str
    build_id: str
    percentage: int
    expect_current: str | None


@dataclass
class GateResult:
    """The replay gate's (or the gate workflow's) answer."""

    passed: bool
    summary: str
    failures: list[str] = field(default_factory=list)


@dataclass
class JudgeRequest:
    """One judgement: the new build since ``since`` against the baseline build."""

    rollout: RolloutRequest
    baseline_build_id: str | None
    since: str
    rollout_since: str
    final: bool
    step: int
    ramp: int


@dataclass
class ProgressRecord:
    """A rollout's state change, for the ``workerkit_rollout_*`` metrics."""

    queue: str
    task_queue: str
    build_id: str
    step: int
    ramp: int
    phase: str
    outcome: str | None = None
    verdict: str | None = None


@dataclass
class RetireRequest:
    """Retire the drained builds of ``deployment`` other than ``keep``."""

    deployment: str
    task_queue: str
    keep: list[str]
    after_seconds: float
    passes: int = 24
    interval_seconds: float = 300.0


@dataclass
class RetireResult:
    """Which builds were retired and which stay (still draining or still polled)."""

    retired: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Rollback(Exception):
    def __init__(self, outcome: str, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


@workflow.defn(name="fleet.Rollout")
class RolloutWorkflow:
    """Ramps one build of one queue through its steps; see the module's docstring."""

    def __init__(self) -> None:
        self._status: RolloutStatus | None = None
        self._actions: list[str] = []
        self._paused = False
        self._routing_lost = False
        self._resumed = False

    @workflow.query
    def status(self) -> RolloutStatus | None:
        """Where the rollout is, and every verdict so far."""
        return self._status

    @workflow.update
    def control(self, action: str) -> str:
        """``abort`` (roll back now), ``pause``, ``resume`` or ``promote-now``."""
        if action == "pause":
            self._paused = True
        elif action == "resume":
            self._paused = False
        self._actions.append(action)
        status = self._status
        return f"{action}: accepted at step {status.step if status else 0}"

    @control.validator
    def _check_control(self, action: str) -> None:
        if action not in CONTROL_ACTIONS:
            raise ValueError(f"unknown action {action!r}: one of {', '.join(CONTROL_ACTIONS)}")
        if self._status is not None and self._status.outcome is not None:
            raise ValueError(f"the rollout has already ended: {self._status.outcome}")

    @workflow.run
    async def run(self, request: RolloutRequest) -> RolloutStatus:
        status = RolloutStatus(
            queue=request.queue,
            deployment=request.deployment,
            build_id=request.build_id,
            previous_build_id=None,
            steps=list(request.steps),
            started_at=workflow.now().isoformat(),
        )
        self._status = status
        self._request = request
        prepared: PrepareResult = await workflow.execute_activity(
            "fleet.rollout.prepare",
            request,
            result_type=PrepareResult,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=_QUICK,
        )
        status.previous_build_id = prepared.current_build_id
        if prepared.not_ready:
            return await self._end("not_ready", prepared.not_ready)
        if prepared.refused:
            return await self._end("refused", prepared.refused)
        if prepared.already_current:
            return await self._end("promoted", f"build {request.build_id} is already current")
        try:
            await self._gate(0, 0, smoke=True)
            for index, ramp in enumerate(request.steps, start=1):
                if await self._step(index, ramp):
                    break  # promote-now: current at once, no more steps
            status.phase = "baking"
            await self._record()
            await self._watch(len(request.steps) + 1, 100)
        except _Rollback as rollback:
            await self._roll_back(rollback.outcome, rollback.reason)
            return await self._end(rollback.outcome, rollback.reason)
        await self._retire_later()
        return await self._end(
            "promoted", f"build {request.build_id} is current after {len(request.steps)} step(s)"
        )

    # -- steps ---------------------------------------------------------------------------

    async def _step(self, index: int, ramp: int) -> bool:
        """Gate, route, watch one step; return True when promoted now by an operator."""
        status = self._status
        assert status is not None
        if index > 1:
            await self._gate(index, ramp, smoke=False)
        await self._route(ramp)
        status.step, status.ramp, status.phase = index, ramp, "ramping"
        await self._record()
        if ramp == 100:
            return False
        promote_now = await self._watch(index, ramp)
        if promote_now:
            await self._verdict(index, ramp, "skipped", "promoted now by an operator")
            await self._route(100)
            status.ramp = 100
            return True
        return False

    async def _gate(self, index: int, ramp: int, *, smoke: bool) -> None:
        request = self._request
        status = self._status
        assert status is not None
        status.phase = "gate"
        try:
            report: GateResult = await workflow.execute_activity(
                "fleet.rollout.replay",
                request.replay_sample,
                result_type=GateResult,
                task_queue=gate_task_queue(request.deployment, request.build_id),
                # No worker of the build polls its gate queue: it is not running (any more).
                schedule_to_start_timeout=timedelta(minutes=2),
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError as err:
            raise _Rollback(
                "refused" if index == 0 else "rolled_back",
                f"{self._where(index, ramp)}: replay gate could not run on build "
                f"{request.build_id} ({_cause(err)}): are its workers running?",
            ) from None
        if not report.passed:
            await self._verdict(index, ramp, "failed", report.summary, kind="gate")
            raise _Rollback(
                "refused" if index == 0 else "rolled_back",
                f"{self._where(index, ramp)}: replay gate: {report.summary}: "
                + "; ".join(report.failures[:3]),
            )
        summary = report.summary
        if smoke and request.gate_workflow:
            smoked: GateResult = await workflow.execute_activity(
                "fleet.rollout.smoke",
                request,
                result_type=GateResult,
                start_to_close_timeout=timedelta(seconds=request.gate_timeout_seconds + 60),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
            if not smoked.passed:
                await self._verdict(index, ramp, "failed", smoked.summary, kind="gate")
                raise _Rollback("refused", f"gate: gate workflow {smoked.summary}")
            summary += f"; {smoked.summary}"
        await self._verdict(index, ramp, "passed", summary, kind="gate")

    async def _watch(self, index: int, ramp: int) -> bool:
        """Watch a step for its pause and judge it; return True on promote-now.

        Raises:
            _Rollback: The step failed, or an operator aborted.
        """
        status, request = self._status, self._request
        assert status is not None
        pause = timedelta(seconds=request.pause_seconds)
        interval = min(max(pause / 5, timedelta(seconds=2)), timedelta(seconds=30))
        since = workflow.now()
        end = since + pause
        extensions = 0
        while True:
            wait = min(end, workflow.now() + interval) - workflow.now()
            if wait > timedelta():
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(lambda: bool(self._actions), timeout=wait)
            promote = await self._take_actions(index)
            if promote:
                return True
            if self._paused:
                held_from = workflow.now()
                status.paused = True
                await workflow.wait_condition(lambda: not self._paused or bool(self._actions))
                status.paused = False
                end += workflow.now() - held_from  # the pause does not count as watching
                if await self._take_actions(index):
                    return True
                continue
            final = workflow.now() >= end
            judged = await self._judge(index, ramp, since, final)
            if judged.failed:
                await self._verdict(index, ramp, "failed", judged.reason, judged.measures)
                raise _Rollback("rolled_back", f"{self._where(index, ramp)}: {judged.reason}")
            if not final:
                continue
            if not judged.insufficient:
                await self._verdict(index, ramp, "passed", judged.reason, judged.measures)
                return False
            if extensions < request.max_extensions:
                extensions += 1
                end = workflow.now() + pause
                await self._verdict(index, ramp, "extended", judged.reason, judged.measures)
                continue
            if request.insufficient_data == "rollback":
                await self._verdict(index, ramp, "insufficient", judged.reason, judged.measures)
                raise _Rollback(
                    "rolled_back", f"{self._where(index, ramp)}: no verdict: {judged.reason}"
                )
            await self._verdict(index, ramp, "held", judged.reason, judged.measures)
            status.phase = "holding"
            await self._record()
            # Only a decision ends the hold: resume, promote-now or abort (a pause changes
            # nothing here).
            self._resumed = False
            while not self._resumed:
                await workflow.wait_condition(lambda: bool(self._actions))
                if await self._take_actions(index):
                    return True
            status.phase = "baking" if index > len(request.steps) else "ramping"
            await self._verdict(index, ramp, "passed", "resumed by an operator")
            return False

    def _where(self, index: int, ramp: int) -> str:
        if index == 0:
            return "gate"
        return "bake (100%)" if index > len(self._request.steps) else f"step {index} ({ramp}%)"

    async def _take_actions(self, index: int) -> bool:
        promote = False
        while self._actions:
            action = self._actions.pop(0)
            if action == "abort":
                raise _Rollback("aborted", f"step {index}: aborted by an operator")
            if action == "promote-now":
                promote = True
            if action == "resume":
                self._resumed = True
        return promote

    async def _judge(self, index: int, ramp: int, since: datetime, final: bool) -> Judgement:
        status, request = self._status, self._request
        assert status is not None
        judged: Judgement = await workflow.execute_activity(
            "fleet.rollout.judge",
            JudgeRequest(
                rollout=request,
                baseline_build_id=status.previous_build_id,
                since=since.isoformat(),
                rollout_since=status.started_at,
                final=final,
                step=index,
                ramp=ramp,
            ),
            result_type=Judgement,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=_QUICK,
        )
        return judged

    # -- routing ---------------------------------------------------------------------------

    async def _route(self, percentage: int, build_id: str | None = None) -> None:
        """Route ``percentage`` of new work to the new build (or to ``build_id``)."""
        status, request = self._status, self._request
        assert status is not None
        # Routing as the rollout left it: the new build current once it reached 100%.
        expect = request.build_id if status.ramp == 100 else status.previous_build_id
        try:
            await workflow.execute_activity(
                "fleet.rollout.route",
                RouteRequest(
                    deployment=request.deployment,
                    task_queue=request.task_queue,
                    build_id=build_id or request.build_id,
                    percentage=percentage,
                    expect_current=expect,
                ),
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=_QUICK,
            )
        except ActivityError as err:
            # Routing changed outside the rollout (or the server refused): stop here and
            # leave routing as whoever changed it decided.
            self._routing_lost = True
            raise _Rollback("aborted", f"step {status.step}: {_cause(err)}") from None

    async def _roll_back(self, outcome: str, reason: str) -> None:
        status = self._status
        assert status is not None
        if status.ramp == 0 or outcome == "refused" or self._routing_lost:
            return  # nothing was routed to the build, or routing is someone else's now
        previous = status.previous_build_id
        try:
            if status.ramp < 100:
                await self._route(0)
            elif previous:
                await self._route(100, previous)  # the previous build current again
        except _Rollback as err:
            status.reason = f"{reason}; rollback itself failed: {err}"
            return
        status.ramp = 0

    async def _retire_later(self) -> None:
        request = self._request
        await workflow.start_child_workflow(
            RetireBuildsWorkflow.run,
            RetireRequest(
                deployment=request.deployment,
                task_queue=request.task_queue,
                keep=[request.build_id],
                after_seconds=request.retire_after_seconds,
            ),
            id=f"fleet-retire-{request.deployment}-{request.build_id}",
            task_queue=OPS_TASK_QUEUE,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )

    # -- bookkeeping -------------------------------------------------------------------------

    async def _verdict(
        self,
        index: int,
        ramp: int,
        outcome: str,
        summary: str,
        measures: list[Measure] | None = None,
        *,
        kind: str = "judgement",
    ) -> None:
        status = self._status
        assert status is not None
        status.verdicts.append(
            StepVerdict(
                step=index,
                ramp=ramp,
                outcome=outcome,
                summary=summary,
                at=workflow.now().isoformat(),
                measures=list(measures or []),
                kind=kind,
            )
        )
        await self._record(verdict=outcome)

    async def _record(self, verdict: str | None = None) -> None:
        status = self._status
        assert status is not None
        await workflow.execute_activity(
            "fleet.rollout.record",
            ProgressRecord(
                queue=status.queue,
                task_queue=self._request.task_queue,
                build_id=status.build_id,
                step=status.step,
                ramp=status.ramp,
                phase=status.phase,
                outcome=status.outcome,
                verdict=verdict,
            ),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=2),
        )

    async def _end(self, outcome: str, reason: str) -> RolloutStatus:
        status = self._status
        assert status is not None
        status.outcome = outcome
        status.reason = f"{reason}; {status.reason}" if status.reason else reason
        status.phase = "done"
        await self._record()
        return status


@workflow.defn(name="fleet.RetireBuilds")
class RetireBuildsWorkflow:
    """After a completed rollout: wait, then retire the older builds once drained."""

    @workflow.run
    async def run(self, request: RetireRequest) -> RetireResult:
        await workflow.sleep(timedelta(seconds=request.after_seconds))
        result = RetireResult()
        for attempt in range(max(request.passes, 1)):
            result = await workflow.execute_activity(
                "fleet.rollout.retire",
                request,
                result_type=RetireResult,
                start_to_close_timeout=timedelta(seconds=120),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
            if not result.remaining or attempt == request.passes - 1:
                break
            await workflow.sleep(timedelta(seconds=request.interval_seconds))
        return result


def _cause(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    if isinstance(err, ApplicationError):
        return err.message
    return str(err) or type(err).__name__
