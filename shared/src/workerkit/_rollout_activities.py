"""The rollout's activities: read and change routing, judge a window, gate, retire.

Every judgement reads data the server has, by Worker Deployment Versioning's search
attributes: executions started on each build in the window that failed or timed out against
those that completed, and running executions of the new build whose workflow task keeps
failing (a non-determinism or a panic in the new code). Where the rollout names Prometheus,
the queue's PromQL checks are judged too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryReverseRequest,
)
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import (
    PinnedVersioningOverride,
    WorkerDeploymentVersion,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from workerkit._deployments import (
    DeploymentError,
    delete_version,
    describe_deployment,
    quote_visibility,
    set_current,
    set_ramping,
)
from workerkit._metrics import (
    ROLLOUT_ACTIVE,
    ROLLOUT_ENDED,
    ROLLOUT_FINISHED,
    ROLLOUT_RAMP,
    ROLLOUT_STEP,
    ROLLOUT_UPDATED,
    ROLLOUT_VERDICTS,
)
from workerkit._promotion import refusal
from workerkit._registry import Queue
from workerkit._replay_gate import HISTORIES_VARIABLE, replay_gate
from workerkit._rollout import (
    REFUSED,
    ROUTING_CHANGED,
    GateResult,
    Judgement,
    JudgeRequest,
    Measure,
    PrepareResult,
    ProgressRecord,
    RetireRequest,
    RetireResult,
    RolloutRequest,
    RouteRequest,
)

__all__ = ["RolloutActivities", "prom_measure", "replay_activity"]

_log = logging.getLogger("workerkit.rollout")

# A workflow task on its second attempt whose first attempt failed (not timed out, as when a
# worker dies mid-task): the history keeps the first failure of a run of failed attempts.
FAILING_TASK_ATTEMPT = 2
_TASK_ENDS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED: True,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT: False,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: False,
}
# Running executions of the new build described per judgement, newest first.
DESCRIBE_SAMPLE = 50
_PROBLEMS = "('category=WorkflowTaskFailed', 'category=WorkflowTaskTimedOut')"
_FAILED = "(ExecutionStatus = 'Failed' OR ExecutionStatus = 'TimedOut')"


def _version(deployment: str, build_id: str) -> str:
    return f"{deployment}:{build_id}"


class RolloutActivities:
    """The activities of :class:`~workerkit._rollout.RolloutWorkflow` on one client."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def all(self) -> list[Callable[..., Any]]:
        """Every activity, for the operations worker."""
        return [self.prepare, self.route, self.judge, self.smoke, self.record, self.retire]

    @activity.defn(name="fleet.rollout.prepare")
    async def prepare(self, request: RolloutRequest) -> PrepareResult:
        """Check the deployment can take this rollout; never changes anything."""
        client, build = self._client, request.build_id
        state = await describe_deployment(
            client, request.deployment, task_queues=[request.task_queue]
        )
        if state is None:
            return PrepareResult(
                current_build_id=None,
                not_ready=f"deployment {request.deployment} does not exist yet: no versioned "
                "worker has polled",
            )
        current = state.current_build_id
        found = state.build(build)
        if found is None or found.pollers == 0:
            return PrepareResult(
                current_build_id=current,
                not_ready=f"build {build} has no pollers on {request.task_queue}: start its "
                "workers first",
            )
        if current == build:
            return PrepareResult(current_build_id=current, already_current=True)
        reason = await refusal(
            client, state, build, queue=request.queue, version_limit=request.version_limit
        )
        if reason is not None:
            return PrepareResult(current_build_id=current, refused=reason)
        return PrepareResult(current_build_id=current)

    @activity.defn(name="fleet.rollout.route")
    async def route(self, request: RouteRequest) -> str:
        """Apply one routing change, unless someone else changed routing meanwhile."""
        state = await describe_deployment(self._client, request.deployment)
        if state is None:
            raise ApplicationError(
                f"deployment {request.deployment} is gone", type=REFUSED, non_retryable=True
            )
        if state.current_build_id != request.expect_current:
            raise ApplicationError(
                f"routing changed outside the rollout: current build is "
                f"{state.current_build_id or 'unversioned'}, the rollout expected "
                f"{request.expect_current or 'unversioned'}; left as it is",
                type=ROUTING_CHANGED,
                non_retryable=True,
            )
        build, pct = request.build_id, request.percentage
        try:
            if pct >= 100:
                if state.current_build_id != build:
                    await set_current(self._client, state, build)
                return f"build {build} is current"
            if pct <= 0:
                if state.ramping_build_id == build:
                    await set_ramping(self._client, state, "", 0.0)
                return f"ramp of build {build} cancelled"
            if state.ramping_build_id not in (None, build):
                raise ApplicationError(
                    f"routing changed outside the rollout: build {state.ramping_build_id} "
                    "is ramping; left as it is",
                    type=ROUTING_CHANGED,
                    non_retryable=True,
                )
            if state.ramping_build_id != build or state.ramp_percentage != pct:
                await set_ramping(self._client, state, build, float(pct))
            return f"build {build} ramps at {pct}%"
        except DeploymentError as err:
            # Conflict token outdated, or the server refused: retried by the activity's
            # policy, which reads the state afresh.
            raise ApplicationError(str(err), type="DeploymentError") from err

    async def _count(self, query: str) -> int:
        return (await self._client.count_workflows(query)).count

    async def _failing_tasks(
        self, request: RolloutRequest, rollout_since: str
    ) -> tuple[int, list[str]]:
        """Running executions whose workflow task fails again and again on the new build.

        An execution moving to the new build (AUTO_UPGRADE) keeps its old version in the
        search attributes while the new build fails its task, so the version cannot be
        queried for: the candidates are described one by one, and count when their pending
        task is on its third attempt with the new build as its version or its target.
        """
        deployment = f"TemporalWorkerDeployment = {quote_visibility(request.deployment)}"
        running = "ExecutionStatus = 'Running'"
        candidates = (
            # What the server flags itself (after a few failed attempts, per its config),
            f"{deployment} AND {running} AND TemporalReportedProblems IN {_PROBLEMS}",
            # the executions that move with the ramp,
            f"{deployment} AND {running} AND TemporalWorkflowVersioningBehavior = 'AutoUpgrade'",
            # and those started since the rollout began (a new one may fail its first task).
            f"TaskQueue = {quote_visibility(request.task_queue)} AND {running} "
            f"AND StartTime >= {quote_visibility(rollout_since)}",
        )
        runs: dict[str, str] = {}
        for query in candidates:
            async for execution in self._client.list_workflows(query, limit=DESCRIBE_SAMPLE):
                runs.setdefault(execution.run_id or execution.id, execution.id)
        limit = asyncio.Semaphore(16)

        async def failing(run_id: str, workflow_id: str) -> bool:
            async with limit:
                try:
                    described = await self._client.workflow_service.describe_workflow_execution(
                        DescribeWorkflowExecutionRequest(
                            namespace=self._client.namespace,
                            execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
                        )
                    )
                except RPCError:
                    return False
                if described.pending_workflow_task.attempt < FAILING_TASK_ATTEMPT:
                    return False
                info = described.workflow_execution_info.versioning_info
                target = info.version_transition.deployment_version.build_id
                if (target or info.deployment_version.build_id) != request.build_id:
                    return False
                try:
                    return await self._last_task_failed(workflow_id, run_id)
                except RPCError:
                    return False

        verdicts = await asyncio.gather(*(failing(r, w) for r, w in runs.items()))
        found = [w for (_, w), bad in zip(runs.items(), verdicts, strict=True) if bad]
        return len(found), found[:3]

    async def _last_task_failed(self, workflow_id: str, run_id: str) -> bool:
        """Whether the execution's last ended workflow task failed (newest events first)."""
        response = await self._client.workflow_service.get_workflow_execution_history_reverse(
            GetWorkflowExecutionHistoryReverseRequest(
                namespace=self._client.namespace,
                execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
                maximum_page_size=50,
            )
        )
        for event in response.history.events:
            if event.event_type in _TASK_ENDS:
                return _TASK_ENDS[event.event_type]
        return False

    async def _outcomes(
        self, deployment: str, build_id: str, since: str, exclude_type: str | None
    ) -> tuple[int, int]:
        """(failed or timed out, completed) of the executions ``build_id`` started since."""
        query = (
            f"TemporalWorkerDeploymentVersion = {quote_visibility(_version(deployment, build_id))} "
            f"AND StartTime >= {quote_visibility(since)}"
        )
        if exclude_type:
            query += f" AND WorkflowType != {quote_visibility(exclude_type)}"
        failed, completed = await asyncio.gather(
            self._count(f"{query} AND {_FAILED}"),
            self._count(f"{query} AND ExecutionStatus = 'Completed'"),
        )
        return failed, completed

    async def _failure_ratio(self, request: JudgeRequest) -> tuple[Measure, int, bool]:
        """The new build's failure ratio against the baseline's limit; (measure, finished,
        whether enough finished for a verdict)."""
        r = request.rollout
        failed, completed = await self._outcomes(
            r.deployment, r.build_id, request.since, r.gate_workflow
        )
        finished = failed + completed
        ratio = failed / finished if finished else 0.0
        base_ratio, base_text = 0.0, "no current build"
        if request.baseline_build_id:
            b_failed, b_completed = await self._outcomes(
                r.deployment, request.baseline_build_id, request.since, r.gate_workflow
            )
            window = "this step"
            if b_failed + b_completed < max(r.min_executions, 1):
                b_failed, b_completed = await self._outcomes(
                    r.deployment, request.baseline_build_id, request.rollout_since, r.gate_workflow
                )
                window = "this rollout"
            b_finished = b_failed + b_completed
            base_ratio = b_failed / b_finished if b_finished else 0.0
            base_text = (
                f"current build {request.baseline_build_id}: {b_failed} of {b_finished} "
                f"over {window}"
            )
        limit = min(1.0, base_ratio + r.max_failure_ratio)
        enough = finished >= r.min_executions
        measure = Measure(
            name="failure_ratio",
            value=ratio,
            limit=limit,
            passed=ratio <= limit or not enough,
            detail=f"{failed} of {finished} failed or timed out; {base_text}",
        )
        return measure, finished, enough

    @activity.defn(name="fleet.rollout.judge")
    async def judge(self, request: JudgeRequest) -> Judgement:
        """Judge the new build over the step's window against the baseline build.

        The measures are taken in order and the first that fails decides: failing workflow
        tasks, the failure ratio, then (at the end of a step, with Prometheus) each PromQL check.
        """
        r = request.rollout
        stuck, examples = await self._failing_tasks(r, request.rollout_since)
        measures = [
            Measure(
                name="failing_workflow_tasks",
                value=float(stuck),
                limit=0.0,
                passed=stuck == 0,
                detail=("e.g. " + ", ".join(examples)) if examples else "",
            )
        ]
        finished, enough = 0, True
        if measures[-1].passed:
            ratio, finished, enough = await self._failure_ratio(request)
            measures.append(ratio)
            if ratio.passed and request.final and r.prometheus_url:
                span = timedelta(seconds=max(r.pause_seconds, 1.0))
                for check in r.checks:
                    measures.append(
                        await asyncio.to_thread(
                            prom_measure, r, check.name, check.query, check.max, span
                        )
                    )
                    if not measures[-1].passed:
                        break
        failing = next((m for m in measures if not m.passed), None)
        if failing is not None:
            reason = failing.describe()
        elif not enough:
            reason = f"{finished} of the {r.min_executions} finished executions a verdict needs"
        else:
            reason = "; ".join(m.describe() for m in measures)
        return Judgement(
            measures=measures,
            failed=failing is not None,
            insufficient=failing is None and not enough,
            finished=finished,
            reason=reason,
        )

    @activity.defn(name="fleet.rollout.smoke")
    async def smoke(self, request: RolloutRequest) -> GateResult:
        """Run the queue's gate workflow on the new build (pinned) and report its outcome."""
        assert request.gate_workflow
        info = activity.info()
        handle = await self._client.start_workflow(
            request.gate_workflow,
            id=f"fleet-gate-{request.deployment}-{request.build_id}-{info.workflow_run_id}",
            task_queue=request.task_queue,
            execution_timeout=timedelta(seconds=request.gate_timeout_seconds),
            versioning_override=PinnedVersioningOverride(
                WorkerDeploymentVersion(request.deployment, request.build_id)
            ),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        try:
            await handle.result()
        except WorkflowFailureError as err:
            cause = err.cause
            message = getattr(cause, "message", None) or str(cause)
            return GateResult(
                passed=False,
                summary=f"{request.gate_workflow} failed on build {request.build_id}: {message}",
            )
        return GateResult(
            passed=True,
            summary=f"gate workflow {request.gate_workflow} completed on build {request.build_id}",
        )

    @activity.defn(name="fleet.rollout.record")
    async def record(self, progress: ProgressRecord) -> None:
        """Export the rollout's state as ``workerkit_rollout_*`` metrics of this process."""
        labels = (progress.queue, progress.task_queue, progress.build_id)
        ROLLOUT_STEP.labels(*labels).set(progress.step)
        ROLLOUT_RAMP.labels(*labels).set(progress.ramp)
        ROLLOUT_ACTIVE.labels(*labels).set(0 if progress.outcome else 1)
        ROLLOUT_UPDATED.labels(*labels).set(time.time())
        if progress.verdict:
            ROLLOUT_VERDICTS.labels(progress.queue, progress.task_queue, progress.verdict).inc()
        if progress.outcome:
            ROLLOUT_FINISHED.labels(progress.queue, progress.task_queue, progress.outcome).inc()
            ROLLOUT_ENDED.labels(*labels, progress.outcome).set(time.time())
            log = _log.warning if progress.outcome != "promoted" else _log.info
            log(
                "rollout ended",
                extra={
                    "queue": progress.queue,
                    "build_id": progress.build_id,
                    "outcome": progress.outcome,
                    "step": progress.step,
                },
            )

    @activity.defn(name="fleet.rollout.retire")
    async def retire(self, request: RetireRequest) -> RetireResult:
        """Delete every drained build without pollers but ``keep`` and the routed ones."""
        state = await describe_deployment(
            self._client, request.deployment, task_queues=[request.task_queue]
        )
        result = RetireResult()
        if state is None:
            return result
        routed = {state.current_build_id, state.ramping_build_id, *request.keep}
        for build in state.builds:
            if build.build_id in routed:
                continue
            if build.status == "draining":
                result.remaining.append(build.build_id)
                result.notes.append(f"{build.build_id}: pinned executions still run on it")
                continue
            if build.pollers:
                result.remaining.append(build.build_id)
                result.notes.append(f"{build.build_id}: drained; stop its workers")
                continue
            try:
                await delete_version(self._client, request.deployment, build.build_id)
            except DeploymentError as err:
                result.remaining.append(build.build_id)
                result.notes.append(str(err))
                continue
            result.retired.append(build.build_id)
        if result.retired:
            _log.info(
                "builds retired",
                extra={"deployment": request.deployment, "retired": result.retired},
            )
        return result


def prom_measure(
    request: RolloutRequest, name: str, query: str, limit: float, window: timedelta
) -> Measure:
    """One PromQL check of the rolled-out build, evaluated now on the request's Prometheus."""
    from workerkit._rollout_policy import PromCheck

    check = PromCheck(name=name, query=query, max=limit)
    rendered = check.render(
        build_id=request.build_id,
        queue=request.queue,
        task_queue=request.task_queue,
        window=window,
    )
    url = (
        (request.prometheus_url or "").rstrip("/")
        + "/api/v1/query?"
        + urllib.parse.urlencode({"query": rendered})
    )
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
    except (OSError, ValueError) as err:
        # Prometheus is an addition: when it does not answer, the server's data decides.
        return Measure(
            name=name,
            value=0.0,
            limit=limit,
            passed=True,
            detail=f"Prometheus did not answer: {err}",
        )
    results = body.get("data", {}).get("result", [])
    if not results:
        return Measure(name=name, value=0.0, limit=limit, passed=True, detail="no data")
    value = max(float(r["value"][1]) for r in results)
    if value != value:  # NaN: a ratio over no events
        return Measure(name=name, value=0.0, limit=limit, passed=True, detail="no data")
    return Measure(name=name, value=value, limit=limit, passed=value <= limit, detail="PromQL")


def replay_activity(client: Client, queue: Queue) -> Callable[..., Any]:
    """The replay gate of the code installed here, for the build's gate task queue."""

    @activity.defn(name="fleet.rollout.replay")
    async def replay(sample: int) -> GateResult:
        directory = os.environ.get(HISTORIES_VARIABLE)
        report = await replay_gate(
            client, queue, histories_dir=Path(directory) if directory else None, sample=sample
        )
        return GateResult(
            passed=report.passed,
            summary=report.summary(),
            failures=report.problems(),
        )

    return replay
