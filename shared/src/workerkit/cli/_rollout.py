"""``fleet deploy rollout`` and its controls: a progressive delivery, followed or not.

    fleet deploy rollout QUEUE [--steps 10,50,100] [--pause 5m] [--max-failure-ratio 0.05]
                               [--min-executions 20] [--wait]
    fleet deploy abort|pause|resume|promote-now QUEUE

The rollout itself is a workflow on the fleet operations task queue (see ``_rollout``); this
module only checks the request, starts it and follows it. Exit codes of ``rollout``: 0 the
build became current (with ``--wait``; without, the rollout started), 1 not ready, 2 bad
usage, 3 refused, rolled back or aborted; the last line says why.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from workerkit._deployments import identity, pollers_by_build, wait_for_pollers
from workerkit._fleet_status import running_rollout
from workerkit._registry import Queue, get_queue
from workerkit._rollout import (
    OPS_TASK_QUEUE,
    CheckSpec,
    RolloutRequest,
    RolloutStatus,
    RolloutWorkflow,
    rollout_id,
)
from workerkit._rollout_policy import INSUFFICIENT_DATA
from workerkit._versioning import WorkerVersion, resolve_version
from workerkit.cli._common import (
    Subparsers,
    UsageError,
    add_connect_timeout,
    duration_option,
    with_client,
)

__all__ = ["describe_rollout", "local_version", "register_actions"]

EXIT_OK = 0
EXIT_NOT_READY = 1
EXIT_REFUSED = 3
PROMETHEUS_VARIABLE = "FLEET_PROMETHEUS_URL"
_EXIT_BY_OUTCOME = {"promoted": EXIT_OK, "not_ready": EXIT_NOT_READY}


def local_version(queue: Queue) -> WorkerVersion:
    """The version of ``queue``'s code installed here (what its rollout gates)."""
    return resolve_version(
        queue_name=queue.name, packages=queue.code_packages(), mode="on", environ=os.environ
    )


def _request(args: argparse.Namespace, queue: Queue, version: WorkerVersion) -> RolloutRequest:
    try:
        policy = queue.rollout.overridden(
            steps=args.steps,
            pause=args.pause,
            max_failure_ratio=args.max_failure_ratio,
            min_executions=args.min_executions,
            retire_after=args.retire_after,
            insufficient_data=args.insufficient_data,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.version_limit < 2:
        raise UsageError("--version-limit must be 2 or more")
    return RolloutRequest(
        queue=queue.name,
        deployment=version.deployment_name,
        task_queue=queue.task_queue,
        build_id=version.build_id,
        steps=list(policy.steps),
        pause_seconds=policy.pause.total_seconds(),
        max_failure_ratio=policy.max_failure_ratio,
        min_executions=policy.min_executions,
        max_extensions=policy.max_extensions,
        insufficient_data=policy.insufficient_data,
        gate_workflow=policy.gate_workflow,
        gate_timeout_seconds=policy.gate_timeout.total_seconds(),
        checks=[CheckSpec(name=c.name, query=c.query, max=c.max) for c in policy.checks],
        prometheus_url=args.prometheus_url or None,
        retire_after_seconds=policy.retire_after.total_seconds(),
        replay_sample=policy.replay_sample,
        version_limit=args.version_limit,
        requested_by=identity(),
    )


def describe_rollout(status: RolloutStatus, *, running: bool) -> list[str]:
    """Lines for ``fleet deploy status``: the rollout's step and every verdict."""
    steps = ",".join(map(str, status.steps))
    if running:
        head = (
            f"rollout of build {status.build_id}: {status.phase}, step {status.step} of "
            f"{len(status.steps)} ({steps}), ramp {status.ramp}%"
            + (" (paused)" if status.paused else "")
        )
    else:
        head = f"last rollout, of build {status.build_id}: {status.outcome}: {status.reason}"
    return [head, *(_verdict_line(v, len(status.steps)) for v in status.verdicts)]


def _verdict_line(verdict: Any, steps: int) -> str:
    if verdict.step == 0:
        where = "gate"
    elif verdict.step > steps:
        where = "bake (100%)"
    else:
        where = f"step {verdict.step} ({verdict.ramp}%)"
        if verdict.kind == "gate":
            where += " gate"
    return f"  {where}: {verdict.outcome}: {verdict.summary}"


async def _follow(handle: WorkflowHandle[RolloutWorkflow, RolloutStatus], queue: str) -> int:
    shown = 0
    holding = False
    while True:
        status: RolloutStatus | None
        described = await handle.describe()
        if described.status != WorkflowExecutionStatus.RUNNING:
            if described.status != WorkflowExecutionStatus.COMPLETED:
                print(
                    f"error: the rollout workflow of {queue} ended "
                    f"{described.status.name if described.status else 'unknown'}",
                    file=sys.stderr,
                )
                return EXIT_REFUSED
            status = await handle.result()
        else:
            status = await handle.query(RolloutWorkflow.status)
        if status is not None:
            for verdict in status.verdicts[shown:]:
                print(_verdict_line(verdict, len(status.steps)), flush=True)
            shown = len(status.verdicts)
            if status.phase == "holding" and not holding:
                print(
                    f"holding at step {status.step}: too few executions for a verdict; "
                    f"`fleet deploy resume|promote-now|abort {queue}` decides",
                    flush=True,
                )
            holding = status.phase == "holding"
            if status.outcome is not None:
                code = _EXIT_BY_OUTCOME.get(status.outcome, EXIT_REFUSED)
                line = (
                    f"rollout of build {status.build_id} of {queue}: "
                    f"{status.outcome.replace('_', ' ')}: {status.reason}"
                )
                if code == EXIT_OK:
                    print(line)
                else:
                    print(f"error: {line}", file=sys.stderr)
                return code
        await asyncio.sleep(1.0)


def _cmd_rollout(args: argparse.Namespace) -> int:
    queue = get_queue(args.queue)
    version = local_version(queue)
    if args.build_id and args.build_id != version.build_id:
        raise UsageError(
            f"the rollout gates the code installed here (build {version.build_id}); run it "
            f"for build {args.build_id} where that build is installed (its image)"
        )
    request = _request(args, queue, version)
    wait_pollers = timedelta(seconds=duration_option(args.wait_pollers, "--wait-pollers"))

    async def body(client: Client) -> int:
        await wait_for_pollers(
            client,
            version.deployment_name,
            version.build_id,
            [queue.task_queue],
            timeout=wait_pollers,
        )
        if not await pollers_by_build(client, [OPS_TASK_QUEUE]):
            print(
                f"error: no worker process serves the fleet operations task queue "
                f"{OPS_TASK_QUEUE} (WORKER_FLEET_OPERATIONS=false everywhere?)",
                file=sys.stderr,
            )
            return EXIT_NOT_READY
        try:
            handle = await client.start_workflow(
                RolloutWorkflow.run,
                request,
                id=rollout_id(version.deployment_name),
                task_queue=OPS_TASK_QUEUE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            found = await running_rollout(client, version.deployment_name)
            status = found[1] if found else None
            where = (
                f"build {status.build_id} at step {status.step} ({status.ramp}%)"
                if status
                else "another build"
            )
            print(
                f"error: a rollout of {queue.name} is running ({where}); follow it with "
                f"`fleet deploy status {queue.name}` or end it with `fleet deploy abort "
                f"{queue.name}`",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        steps = ",".join(map(str, request.steps))
        print(
            f"rollout of build {version.build_id} of {queue.name} started: steps {steps}, "
            f"{request.pause_seconds:g}s each (workflow {handle.id})",
            flush=True,
        )
        if not args.wait:
            print(
                f"follow it: fleet deploy status {queue.name}; stop it: fleet deploy abort "
                f"{queue.name}"
            )
            return EXIT_OK
        return await _follow(handle, queue.name)

    return with_client(args, body)


def _control(action: str) -> Any:
    def command(args: argparse.Namespace) -> int:
        queue = get_queue(args.queue)
        deployment = local_version(queue).deployment_name

        async def body(client: Client) -> int:
            found = await running_rollout(client, deployment)
            if found is None or not found[2]:
                print(f"error: no rollout of {queue.name} is running", file=sys.stderr)
                return EXIT_REFUSED
            try:
                answer = await found[0].execute_update(RolloutWorkflow.control, action)
            except WorkflowUpdateFailedError as err:
                cause = getattr(err.cause, "message", None) or str(err.cause)
                print(f"error: {action} refused: {cause}", file=sys.stderr)
                return EXIT_REFUSED
            print(f"rollout of {queue.name}: {answer}")
            return EXIT_OK

        return with_client(args, body)

    return command


_CONTROL_HELP = {
    "abort": "roll the running rollout back now (the previous build stays or is restored)",
    "pause": "stop the running rollout's clock; its ramp stays as it is",
    "resume": "resume a paused or holding rollout",
    "promote-now": "make the build being rolled out current now, skipping the remaining steps",
}


def register_actions(dp_sub: Subparsers) -> None:
    """Add ``rollout`` and its controls to ``fleet deploy``."""
    p = dp_sub.add_parser(
        "rollout",
        help="ramp the build installed here in steps, judging each; roll back by itself",
        description=(__doc__ or "").split("\n\n")[0],
    )
    p.add_argument("queue")
    add_connect_timeout(p)
    p.add_argument("--steps", help="ramp percentages, ending at 100 (default: the queue's)")
    p.add_argument("--pause", help="how long each step is watched (e.g. 5m)")
    p.add_argument(
        "--max-failure-ratio",
        type=float,
        help="how much more of its executions the new build may fail than the current one",
    )
    p.add_argument(
        "--min-executions", type=int, help="finished executions a step needs for a verdict"
    )
    p.add_argument(
        "--insufficient-data",
        choices=INSUFFICIENT_DATA,
        help="after the extensions, a step without enough data holds or rolls back",
    )
    p.add_argument("--retire-after", help="older drained builds are retired this long after")
    p.add_argument("--build-id", help="refuse unless the build installed here is this one")
    p.add_argument("--wait", action="store_true", help="follow the rollout until it ends")
    p.add_argument("--wait-pollers", default="60s", help="how long to wait for the build's workers")
    p.add_argument(
        "--prometheus-url",
        default=os.environ.get(PROMETHEUS_VARIABLE, ""),
        help=f"judge the queue's PromQL checks there (default ${PROMETHEUS_VARIABLE})",
    )
    p.add_argument(
        "--version-limit",
        type=int,
        default=100,
        help="the server's limit on versions per deployment (default 100)",
    )
    p.set_defaults(func=_cmd_rollout)
    for action, help in _CONTROL_HELP.items():
        c = dp_sub.add_parser(action, help=help, description=help)
        c.add_argument("queue")
        add_connect_timeout(c)
        c.set_defaults(func=_control(action))
