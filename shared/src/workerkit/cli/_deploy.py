"""``fleet deploy``: roll a queue's workers from one build to the next, safely.

    fleet deploy build-id QUEUE            the build id of the code installed here
    fleet deploy status QUEUE [--json]     builds, routing, drainage and pollers
    fleet deploy promote QUEUE [--ramp N]  pollers + replay gate, then current (or ramp N %)
    fleet deploy rollback QUEUE            cancel a ramp, or make the previous build current
    fleet deploy retire QUEUE BUILD_ID     exit 0 once the build is drained (stop it then)
    fleet deploy rollout QUEUE [--wait]    ramp in steps, judge each, roll back by itself
    fleet deploy abort|pause|resume|promote-now QUEUE   control a running rollout

Exit codes: 0 done (or nothing to do), 1 the server or the build is not ready (no pollers,
unknown build), 2 bad usage, 3 refused (replay gate failed, build still current or draining).
Every command is idempotent: run again, it reports the state it finds.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from workerkit._deployments import (
    DeploymentError,
    DeploymentState,
    describe_deployment,
    set_current,
    set_ramping,
)
from workerkit._fleet_status import running_rollout
from workerkit._promotion import promote
from workerkit._registry import Queue, get_queue
from workerkit._replay_gate import HISTORIES_VARIABLE
from workerkit._versioning import BUILD_ID_VARIABLE
from workerkit.cli._common import (
    Subparsers,
    UsageError,
    add_connect_timeout,
    duration_option,
    print_json,
    with_client,
)
from workerkit.cli._rollout import describe_rollout, local_version, register_actions

EXIT_NOT_READY = 1
EXIT_REFUSED = 3


async def _state(client: Client, queue: Queue, deployment: str) -> DeploymentState:
    state = await describe_deployment(client, deployment, task_queues=[queue.task_queue])
    if state is None:
        raise DeploymentError(
            f"deployment {deployment} does not exist yet: no versioned worker of queue "
            f"{queue.name} has polled (start one with {BUILD_ID_VARIABLE} set)"
        )
    return state


def _cmd_build_id(args: argparse.Namespace) -> int:
    version = local_version(get_queue(args.queue))
    print(version.build_id)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    queue = get_queue(args.queue)
    deployment = local_version(queue).deployment_name

    async def body(client: Client) -> int:
        state = await describe_deployment(client, deployment, task_queues=[queue.task_queue])
        builds = state.builds if state else ()
        found = await running_rollout(client, deployment)
        rollout = found[1] if found else None
        rollout_running = bool(found and found[2])
        if args.json:
            print_json(
                {
                    "queue": queue.name,
                    "deployment": deployment,
                    "task_queue": queue.task_queue,
                    "current_build_id": state.current_build_id if state else None,
                    "ramping_build_id": state.ramping_build_id if state else None,
                    "ramp_percentage": state.ramp_percentage if state else 0.0,
                    "builds": [
                        {
                            "build_id": b.build_id,
                            "status": b.status,
                            "ramp_percentage": b.ramp_percentage,
                            "pollers": b.pollers,
                            "current_since": b.current_since.isoformat()
                            if b.current_since
                            else None,
                            "created": b.created.isoformat() if b.created else None,
                        }
                        for b in builds
                    ],
                    "rollout": (
                        dataclasses.asdict(rollout) | {"running": rollout_running}
                        if rollout
                        else None
                    ),
                }
            )
            return 0
        if state is None:
            print(f"deployment {deployment}: no versioned worker has polled yet")
            return 0
        print(f"deployment {deployment} (task queue {queue.task_queue})")
        print(f"{'BUILD ID':<24} {'STATUS':<10} {'RAMP':>5} {'POLLERS':>7}  CURRENT SINCE")
        for b in builds:
            ramp = f"{b.ramp_percentage:g}%" if b.status == "ramping" else "-"
            since = b.current_since.strftime("%Y-%m-%d %H:%M:%S") if b.current_since else "-"
            print(f"{b.build_id:<24} {b.status:<10} {ramp:>5} {b.pollers:>7}  {since}")
        if rollout is not None:
            for line in describe_rollout(rollout, running=rollout_running):
                print(line)
        return 0

    return with_client(args, body)


def _cmd_promote(args: argparse.Namespace) -> int:
    queue = get_queue(args.queue)
    local = local_version(queue)
    build_id = args.build_id or local.build_id
    if build_id != local.build_id:
        raise UsageError(
            f"the replay gate runs the code installed here (build {local.build_id}); "
            f"run promote for build {build_id} where that build is installed (its image)"
        )
    if args.ramp is not None and not 0 < args.ramp < 100:
        raise UsageError("--ramp must be a percentage greater than 0 and less than 100")
    wait = duration_option(args.wait_pollers, "--wait-pollers")
    histories = Path(args.histories) if args.histories else None
    if histories is not None and not histories.is_dir():
        raise UsageError(f"--histories {args.histories}: not a directory")

    async def body(client: Client) -> int:
        done = await promote(
            client,
            queue,
            deployment=local.deployment_name,
            build_id=build_id,
            ramp=args.ramp,
            wait_pollers=timedelta(seconds=wait),
            histories_dir=histories,
            sample=args.sample,
        )
        if done.gate is not None:
            print(done.gate.summary())
            for problem in done.gate.problems():
                print(f"  non-deterministic: {problem}", file=sys.stderr)
        if done.outcome == "refused":
            print(f"error: {done.message}", file=sys.stderr)
            return EXIT_REFUSED
        print(done.message)
        return 0

    return with_client(args, body)


def _cmd_rollback(args: argparse.Namespace) -> int:
    queue = get_queue(args.queue)
    deployment = local_version(queue).deployment_name

    async def body(client: Client) -> int:
        found = await running_rollout(client, deployment)
        if found is not None and found[2]:
            # The rollout owns routing while it runs: rolling back is aborting it.
            answer = await found[0].execute_update("control", "abort", result_type=str)
            print(f"rollout of {queue.name} aborted: {answer}; it rolls back by itself")
            return 0
        state = await _state(client, queue, deployment)
        if state.ramping_build_id:
            await set_ramping(client, state, "", 0.0)
            print(
                f"ramp of build {state.ramping_build_id} of {queue.name} cancelled; "
                f"current stays {state.current_build_id or 'unversioned'}"
            )
            return 0
        previous = state.previous_build()
        if previous is None:
            print(
                f"error: {queue.name} has no previous build to roll back to "
                f"(current: {state.current_build_id or 'none'})",
                file=sys.stderr,
            )
            return EXIT_NOT_READY
        if previous.pollers == 0:
            print(
                f"error: previous build {previous.build_id} of {queue.name} has no pollers; "
                "start its workers first, then roll back",
                file=sys.stderr,
            )
            return EXIT_NOT_READY
        was = await set_current(client, state, previous.build_id)
        print(f"rolled back {queue.name}: build {previous.build_id} is current again (was {was})")
        return 0

    return with_client(args, body)


def _cmd_retire(args: argparse.Namespace) -> int:
    queue = get_queue(args.queue)
    deployment = local_version(queue).deployment_name
    wait = duration_option(args.wait, "--wait")

    async def body(client: Client) -> int:
        deadline = time.monotonic() + wait
        while True:
            state = await _state(client, queue, deployment)
            build = state.build(args.build_id)
            if build is None:
                known = ", ".join(b.build_id for b in state.builds) or "none"
                print(
                    f"error: deployment {deployment} has no build {args.build_id} (known: {known})",
                    file=sys.stderr,
                )
                return EXIT_NOT_READY
            if build.status in ("current", "ramping"):
                print(
                    f"error: build {args.build_id} of {queue.name} is {build.status}; promote "
                    "another build before retiring it",
                    file=sys.stderr,
                )
                return EXIT_REFUSED
            if build.status != "draining":
                print(
                    f"build {args.build_id} of {queue.name} is {build.status}: no open execution "
                    "needs it; stop its workers"
                )
                return 0
            if time.monotonic() >= deadline:
                print(
                    f"build {args.build_id} of {queue.name} is still draining: pinned executions "
                    "remain on it; keep its workers running",
                    file=sys.stderr,
                )
                return EXIT_REFUSED
            await asyncio.sleep(2.0)

    return with_client(args, body)


def register(sub: Subparsers) -> None:
    """Add ``fleet deploy`` and its actions to the CLI."""
    dp = sub.add_parser(
        "deploy",
        help="roll out a new build of a queue (Worker Deployment Versioning)",
        description=(__doc__ or "").split("\n\n")[0],
    )
    dp_sub = dp.add_subparsers(dest="deploy_command", required=True, metavar="ACTION")

    def action(name: str, help: str, *, client: bool = True) -> argparse.ArgumentParser:
        p = dp_sub.add_parser(name, help=help, description=help)
        p.add_argument("queue")
        if client:
            add_connect_timeout(p)
        return p

    p = action("build-id", "print the build id of the code installed here", client=False)
    p.set_defaults(func=_cmd_build_id)

    p = action("status", "list the queue's builds: status, ramp, pollers")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_status)

    p = action(
        "promote",
        "make the build installed here current (or ramp it) once it polls and replays",
    )
    p.add_argument("--build-id", help="refuse unless the build installed here is this one")
    p.add_argument("--ramp", type=float, help="send this percentage of new work to it instead")
    p.add_argument("--wait-pollers", default="60s", help="how long to wait for the build's workers")
    p.add_argument(
        "--histories",
        default=os.environ.get(HISTORIES_VARIABLE),
        help="a directory of more stored histories to replay, besides those the queue ships "
        f"(default ${HISTORIES_VARIABLE})",
    )
    p.add_argument(
        "--sample", type=int, default=20, help="recent server executions to replay (default 20)"
    )
    p.set_defaults(func=_cmd_promote)

    register_actions(dp_sub)

    p = action("rollback", "cancel a ramp, or make the previous build current again")
    p.set_defaults(func=_cmd_rollback)

    p = action("retire", "succeed once a build is drained, so its workers can be stopped")
    p.add_argument("build_id")
    p.add_argument("--wait", default="0s", help="wait up to this long for it to drain")
    p.set_defaults(func=_cmd_retire)
