"""The replay gate: does this build's workflow code replay what the server is running?

Before a build becomes current, the executions that will move to it (AUTO_UPGRADE and
unversioned ones) replay their histories on its code, with the SDK's Replayer and the same
interceptors a worker runs. Two sources: the histories stored with the code (the queue's
``histories`` package, shipped with it: one per workflow type and scenario, recorded by the
queue's tests, and frozen ones that prove an older shape still replays) and a sample of
recent executions fetched from the server for the queue's workflow types, open ones first,
since those are the executions a promotion really moves. A PINNED execution never moves to
another build, so its history is not replayed, nor is a stored history of a type this build
runs PINNED; an execution whose type this build no longer registers counts as a failure.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from temporalio.api.enums.v1 import EventType, VersioningBehavior
from temporalio.client import Client, WorkflowHistory
from temporalio.common import VersioningBehavior as SdkBehavior
from temporalio.worker import Replayer
from workerkit._child_priority import queue_interceptors
from workerkit._determinism import Finding, check_queue
from workerkit._exceptions import ConfigurationError
from workerkit._plugin import WorkerkitPlugin
from workerkit._registry import Queue

__all__ = [
    "HISTORIES_VARIABLE",
    "GateReport",
    "ReplayFailure",
    "replay_gate",
    "stored_histories",
]

_log = logging.getLogger("workerkit.replay_gate")

# A directory of more stored histories, besides those the queue's package ships (optional).
HISTORIES_VARIABLE = "FLEET_HISTORIES_DIR"
HISTORY_KINDS = ("recorded", "frozen")


@dataclass(frozen=True, kw_only=True)
class ReplayFailure:
    """One history this build's code does not replay."""

    source: str
    workflow_id: str
    workflow_type: str
    error: str

    def __str__(self) -> str:
        return f"{self.workflow_type} {self.workflow_id} ({self.source}): {self.error}"


@dataclass(frozen=True, kw_only=True)
class GateReport:
    """What the gate replayed and what failed."""

    replayed_stored: int = 0
    replayed_server: int = 0
    skipped_pinned: int = 0
    failures: list[ReplayFailure] = field(default_factory=list)
    # Calls in the build's workflow code that break replay (the static check).
    findings: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every replayed history replayed cleanly and the code has no finding."""
        return not self.failures and not self.findings

    def summary(self) -> str:
        """One line for an operator."""
        failing = len(self.failures) + len(self.findings)
        verdict = "passed" if self.passed else f"FAILED ({failing} failing)"
        return (
            f"replay gate {verdict}: {self.replayed_stored} stored and {self.replayed_server} "
            f"server histories replayed, {self.skipped_pinned} pinned executions skipped, "
            f"{len(self.findings)} non-deterministic calls found (workflowcheck)"
        )

    def problems(self) -> list[str]:
        """Every failure and finding, one line each."""
        return [str(f) for f in self.failures] + [f"workflowcheck: {f}" for f in self.findings]


def stored_histories(queue: Queue, directory: Path | None = None) -> list[Traversable]:
    """The histories stored for ``queue``: its ``histories`` package's ``recorded/*.json``
    and ``frozen/*.json``, then, given a ``directory``, ``DIR/<queue>/*.json`` (else
    ``DIR/*.json``).

    Raises:
        ConfigurationError: The queue names a histories package that does not import.
    """
    found: list[Traversable] = []
    if queue.histories is not None:
        try:
            package = resources.files(queue.histories)
        except ModuleNotFoundError as err:
            raise ConfigurationError(
                f"queue {queue.name!r}: histories package {queue.histories!r} does not "
                f"import: {err}"
            ) from None
        for kind in HISTORY_KINDS:
            folder = package.joinpath(kind)
            if folder.is_dir():
                found += sorted(
                    (f for f in folder.iterdir() if f.name.endswith(".json")),
                    key=lambda f: f.name,
                )
    if directory is not None:
        own = directory / queue.name
        found += sorted((own if own.is_dir() else directory).glob("*.json"))
    return found


def _behavior(history: WorkflowHistory) -> int:
    # The behavior the execution's last completed workflow task reported: what the server
    # routes it by. Histories recorded by unversioned workers have none (they move).
    behavior = VersioningBehavior.VERSIONING_BEHAVIOR_UNSPECIFIED
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            behavior = event.workflow_task_completed_event_attributes.versioning_behavior
    return behavior


def _type_name(history: WorkflowHistory) -> str:
    first = history.events[0] if history.events else None
    if first is None or not first.HasField("workflow_execution_started_event_attributes"):
        return "?"
    return first.workflow_execution_started_event_attributes.workflow_type.name


async def _server_sample(
    client: Client, queue: Queue, sample: int
) -> list[tuple[str, WorkflowHistory]]:
    if sample <= 0:
        return []
    types = ", ".join(f"'{t}'" for t in sorted(queue.workflow_types()))
    # Only executions that can move: on a busy queue the newest ones are mostly PINNED, and a
    # sample of those would replay nothing. (Unversioned executions have no behavior yet.)
    movable = (
        "(TemporalWorkflowVersioningBehavior = 'AutoUpgrade' "
        "OR TemporalWorkflowVersioningBehavior IS NULL)"
    )
    base = f"TaskQueue = '{queue.task_queue}' AND WorkflowType IN ({types}) AND {movable}"
    picked: dict[str, tuple[str, WorkflowHistory]] = {}
    # Open executions first: they are the ones a promotion moves.
    for query in (f"{base} AND ExecutionStatus = 'Running'", base):
        async for execution in client.list_workflows(query, limit=sample):
            if len(picked) >= sample:
                break
            if execution.run_id in picked:
                continue
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            history = await handle.fetch_history()
            picked[execution.run_id] = (f"server run {execution.run_id}", history)
        if len(picked) >= sample:
            break
    return list(picked.values())


async def replay_gate(
    client: Client | None,
    queue: Queue,
    *,
    histories_dir: Path | None = None,
    sample: int = 20,
) -> GateReport:
    """Replay stored and recent server histories of ``queue`` on the code installed here.

    Args:
        client: Where to fetch recent histories from; ``None`` replays stored ones only.
        queue: The queue whose installed code is the build under test.
        histories_dir: More stored histories, besides the queue's own (see
            :func:`stored_histories`).
        sample: At most this many recent executions from the server.
    """
    candidates: list[tuple[str, WorkflowHistory, bool]] = []
    for path in stored_histories(queue, histories_dir):
        data = json.loads(path.read_text())
        workflow_id = path.name.removesuffix(".json")
        candidates.append(
            (f"stored {path.name}", WorkflowHistory.from_json(workflow_id, data), False)
        )
    if client is not None:
        for source, history in await _server_sample(client, queue, sample):
            candidates.append((source, history, True))

    replayer = Replayer(
        workflows=list(queue.workflows),
        namespace=client.namespace if client is not None else "default",
        plugins=[WorkerkitPlugin(interceptors=queue_interceptors(queue))],
    )
    registered = set(queue.workflow_types())
    # A stored history stands for executions of its type: pinned ones if this build runs
    # the type PINNED (they never move to it), moving ones otherwise.
    pinned_types = {
        name
        for name, behavior in queue.versioning_behaviors().items()
        if behavior == SdkBehavior.PINNED
    }
    stored_n = server_n = pinned_n = 0
    failures: list[ReplayFailure] = []
    for source, history, from_server in candidates:
        type_name = _type_name(history)
        if from_server:
            pinned = _behavior(history) == VersioningBehavior.VERSIONING_BEHAVIOR_PINNED
        else:
            pinned = type_name in pinned_types
        if pinned:
            pinned_n += 1
            continue
        if type_name not in registered:
            failures.append(
                ReplayFailure(
                    source=source,
                    workflow_id=history.workflow_id,
                    workflow_type=type_name,
                    error="this build does not register the workflow type",
                )
            )
            continue
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if from_server:
            server_n += 1
        else:
            stored_n += 1
        if result.replay_failure is not None:
            failures.append(
                ReplayFailure(
                    source=source,
                    workflow_id=history.workflow_id,
                    workflow_type=type_name,
                    error=" ".join(str(result.replay_failure).split()),
                )
            )
    report = GateReport(
        replayed_stored=stored_n,
        replayed_server=server_n,
        skipped_pinned=pinned_n,
        failures=failures,
        # Paths no history covers: the static check reads them all.
        findings=check_queue(queue),
    )
    _log.info(report.summary(), extra={"queue": queue.name})
    return report
