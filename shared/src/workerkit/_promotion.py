"""Whether a build may take a queue's traffic, and promoting it there.

The one promotion policy: ``fleet deploy promote`` runs :func:`promote`; the rollout
workflow's ``prepare`` activity asks :func:`refusal` before its first step. Compose's
``make deploy`` and the chart's promote Job run those two commands, so every path that moves
traffic to a build decides the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

from temporalio.client import Client
from workerkit._deployments import (
    DeploymentState,
    set_current,
    set_ramping,
    task_queues_of,
    wait_for_pollers,
)
from workerkit._registry import Queue
from workerkit._replay_gate import GateReport, replay_gate

__all__ = ["VERSION_HEADROOM", "Promotion", "promote", "refusal"]

# A deployment within this many versions of the server's limit takes no new build: a rollout
# that cannot register its build half-way is worse than one refused before it starts.
VERSION_HEADROOM = 5


async def refusal(
    client: Client,
    state: DeploymentState,
    build_id: str,
    *,
    queue: str,
    version_limit: int | None = None,
) -> str | None:
    """Why ``build_id`` may not take traffic from ``state``; ``None`` when it may.

    Args:
        client: The namespace's client (the task queues each build polls are read).
        state: The deployment as just described.
        build_id: The build that would take traffic.
        queue: The queue's name, for the commands the reason suggests.
        version_limit: The server's versions per deployment, when known.
    """
    current = state.current_build_id
    if state.ramping_build_id and state.ramping_build_id != build_id:
        return (
            f"build {state.ramping_build_id} is ramping at {state.ramp_percentage:g}%: roll "
            f"it back (fleet deploy rollback {queue}) before promoting another"
        )
    if version_limit is not None and len(state.builds) >= version_limit - VERSION_HEADROOM:
        drained = [
            b.build_id
            for b in state.builds
            if b.status in ("drained", "inactive") and b.build_id not in (current, build_id)
        ]
        return (
            f"deployment {state.name} holds {len(state.builds)} of the server's "
            f"{version_limit} versions: retire drained builds first (fleet deploy retire "
            f"{queue} BUILD_ID; drained: {', '.join(drained[:10]) or 'none'})"
        )
    if current and current != build_id:
        # Executions on a task queue the new build does not poll would be stranded once the
        # current build is retired (e.g. a queue version bumped under versioning).
        missing = await task_queues_of(client, state.name, current) - await task_queues_of(
            client, state.name, build_id
        )
        if missing:
            return (
                f"build {build_id} does not poll {', '.join(sorted(missing))}, which current "
                f"build {current} polls, so executions there would be stranded; with Worker "
                "Versioning keep the queue's version and let builds replace each other"
            )
    return None


@dataclass(frozen=True, kw_only=True)
class Promotion:
    """What :func:`promote` did.

    Attributes:
        outcome: ``unchanged`` (already so), ``promoted``, or ``refused`` (nothing changed).
        message: One line for an operator: what changed, or why not.
        gate: The replay gate's report, when it ran.
    """

    outcome: Literal["unchanged", "promoted", "refused"]
    message: str
    gate: GateReport | None = None


async def promote(
    client: Client,
    queue: Queue,
    *,
    deployment: str,
    build_id: str,
    ramp: float | None = None,
    wait_pollers: timedelta = timedelta(),
    histories_dir: Path | None = None,
    sample: int = 20,
    version_limit: int | None = None,
) -> Promotion:
    """Make ``build_id`` of ``queue`` current (or ramp it to ``ramp`` %) if it passes.

    Waits for the build's pollers, refuses what :func:`refusal` refuses, runs the replay gate
    on the code installed here, then asks :func:`refusal` again on the state read after the
    gate and changes routing on that conflict token. ``version_limit`` (the server's versions
    per deployment, when known) adds the headroom check the rollout makes.

    Raises:
        DeploymentError: The build has no pollers within ``wait_pollers``, or the server
            refused the change.
    """
    name = queue.name
    state = await wait_for_pollers(
        client, deployment, build_id, [queue.task_queue], timeout=wait_pollers
    )
    if ramp is None and state.current_build_id == build_id:
        return Promotion(
            outcome="unchanged", message=f"build {build_id} of {name} is already current"
        )
    if ramp is not None and state.ramping_build_id == build_id and state.ramp_percentage == ramp:
        return Promotion(
            outcome="unchanged",
            message=f"build {build_id} of {name} is already ramping at {ramp:g}%",
        )
    reason = await refusal(client, state, build_id, queue=name, version_limit=version_limit)
    if reason is not None:
        return Promotion(
            outcome="refused", message=f"promotion of build {build_id} of {name} refused: {reason}"
        )
    report = await replay_gate(client, queue, histories_dir=histories_dir, sample=sample)
    if not report.passed:
        return Promotion(
            outcome="refused",
            message=f"promotion of build {build_id} of {name} refused: its code does not "
            "replay the histories above, or makes calls that break replay",
            gate=report,
        )
    # Routing may have changed while the gate ran (minutes): decide again, on the state and
    # the conflict token read now.
    state = await wait_for_pollers(
        client, deployment, build_id, [queue.task_queue], timeout=timedelta()
    )
    reason = await refusal(client, state, build_id, queue=name, version_limit=version_limit)
    if reason is not None:
        return Promotion(
            outcome="refused",
            message=f"promotion of build {build_id} of {name} refused: {reason}",
            gate=report,
        )
    if ramp is None:
        previous = await set_current(client, state, build_id)
        return Promotion(
            outcome="promoted",
            message=f"build {build_id} of {name} is now current"
            + (f" (was {previous})" if previous else ""),
            gate=report,
        )
    await set_ramping(client, state, build_id, ramp)
    return Promotion(
        outcome="promoted",
        message=f"build {build_id} of {name} is now ramping at {ramp:g}% "
        f"(current stays {state.current_build_id or 'unversioned'})",
        gate=report,
    )
