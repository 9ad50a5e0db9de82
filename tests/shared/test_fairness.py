"""Fair sharing: the declaration is checked, every start the fleet makes carries the tenant's
fairness key, and ``fleet limits apply`` makes the server's task queue config match."""

from __future__ import annotations

import json
import math
import subprocess
import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import Priority, VersioningBehavior
from workerkit import (
    ConfigurationError,
    Fairness,
    Queue,
    RateLimits,
    Schedule,
    WorkerSettings,
    build_worker,
    launch,
    sync_schedules,
)
from workerkit._fairness import fairness_key_value, field_problem
from workerkit._task_queue_limits import LimitChange, apply_limits, read_limits
from workerkit.cli import run

from support.fleet import run_cli
from support.temporal import temporal_cli


@dataclass(frozen=True)
class Account:
    id: str


@dataclass(frozen=True)
class Job:
    job_id: str
    tenant: str
    account: Account
    parts: int


@workflow.defn
class JobWorkflow:
    @workflow.run
    async def run(self, job: Job) -> int:
        if job.parts <= 1:
            return 1
        # Children of the same queue: each gets its own input's key, with nothing set here.
        done = 0
        for part in range(job.parts):
            child = Job(f"{job.job_id}-{part}", f"{job.tenant}-part", job.account, 1)
            done += await workflow.execute_child_workflow(
                JobWorkflow.run, child, id=f"job-{child.job_id}"
            )
        return done


@workflow.defn
class PlainWorkflow:
    @workflow.run
    async def run(self, note: str) -> None:
        return None


def queue(**fields: object) -> Queue:
    base: dict[str, object] = {
        "name": f"fair{uuid.uuid4().hex[:8]}",
        "workflows": [JobWorkflow],
        "workflow_ids": {JobWorkflow: lambda job: f"job-{job.job_id}"},
        "fairness": Fairness(key="tenant"),
        "versioning": VersioningBehavior.PINNED,
    }
    return Queue(**(base | fields))  # type: ignore[arg-type]


def job(tenant: str, parts: int = 1) -> Job:
    return Job(uuid.uuid4().hex[:10], tenant, Account(f"acct-{tenant}"), parts)


# --- the declaration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fairness", "rate_limits", "message"),
    [
        (
            Fairness(key="customer"),
            RateLimits(),
            "fairness key 'customer' of JobWorkflow: Job has no field 'customer' "
            "(it has account, job_id, parts, tenant)",
        ),
        (
            Fairness(key="account.name"),
            RateLimits(),
            "Account has no field 'name' (it has id)",
        ),
        (Fairness(key="tenant.x"), RateLimits(), "str has no fields to read 'x' from"),
        (Fairness(priority=0), RateLimits(), "priority of JobWorkflow must be from 1 to 5"),
        (Fairness(priority=True), RateLimits(), "must be an integer from 1 to 5, not True"),
        (
            Fairness(weights={"gold": -1.0}),
            RateLimits(),
            "fairness weight of 'gold' must be a number above 0, not -1.0",
        ),
        (
            Fairness(weights={"gold": "3"}),  # type: ignore[dict-item]
            RateLimits(),
            "fairness weight of 'gold' must be a number above 0, not '3'",
        ),
        (Fairness(weights={"x" * 65: 2.0}), RateLimits(), "is longer than 64 bytes"),
        (
            Fairness(weights={"gold": 5000}),
            RateLimits(),
            "fairness weight of 'gold' must be from 0.001 to 1000, not 5000",
        ),
        (
            Fairness(),
            RateLimits(activity_tasks=math.nan),
            "rate limit activity_tasks must be a number above 0, not nan",
        ),
        (
            Fairness(),
            RateLimits(activity_tasks_per_key=0),
            "rate limit activity_tasks_per_key must be a number above 0, not 0",
        ),
    ],
)
def test_a_declaration_that_cannot_work_is_refused_naming_the_problem(
    fairness: Fairness, rate_limits: RateLimits, message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        queue(fairness=fairness, rate_limits=rate_limits)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_key_needs_a_workflow_with_one_typed_argument() -> None:
    with pytest.raises(ConfigurationError, match="PlainWorkflow: str has no fields"):
        queue(workflows=[PlainWorkflow], workflow_ids={}, fairness=Fairness(key="tenant"))
    with pytest.raises(ConfigurationError, match="names PlainWorkflow, which the queue does not"):
        queue(fairness=Fairness(key={PlainWorkflow: "tenant"}))


def test_only_a_queue_with_an_activity_rate_limit_never_starts_activities_eagerly() -> None:
    # An eager activity skips the task queue, so the server's rate limit would never see it.
    assert queue(fairness=Fairness(), rate_limits=RateLimits(activity_tasks=5)).limits_activities()
    limited = queue(rate_limits=RateLimits(activity_tasks_per_key=1))
    assert limited.limits_activities()
    # A fairness key alone keeps them (its workflow tasks are dispatched fairly already).
    assert not queue().limits_activities()


# (str, Enum), not StrEnum: str() of such a member is "Tier.GOLD", the case to get right.
class Tier(str, Enum):  # noqa: UP042
    GOLD = "gold"


@dataclass(frozen=True)
class Member:
    tier: Tier
    account: Account | None


def test_keys_read_as_an_outside_client_would_send_them() -> None:
    # An enum is its value, whether the input is a dataclass or an outside client's JSON.
    assert fairness_key_value(Member(Tier.GOLD, None), "tier") == "gold"
    assert fairness_key_value({"tier": "gold"}, "tier") == "gold"
    # Through an optional field: its key when set, none when not.
    assert field_problem(Member, "account.id") is None
    assert fairness_key_value(Member(Tier.GOLD, Account("a1")), "account.id") == "a1"
    assert fairness_key_value(Member(Tier.GOLD, None), "account.id") is None
    assert fairness_key_value({"account": {"id": 7}}, "account.id") == "7"


def test_the_priority_is_read_from_the_input() -> None:
    q = queue(fairness=Fairness(key="account.id", priority=2))
    assert q.priority("JobWorkflow", [job("t1")]) == Priority(
        priority_key=2, fairness_key="acct-t1"
    )
    # A key longer than the server accepts becomes a digest, the same for the same tenant.
    long = Job("j", "t", Account("a" * 100), 1)
    key = q.priority("JobWorkflow", [long]).fairness_key
    assert key is not None and key.startswith("sha256:") and len(key.encode()) <= 64
    assert key == q.priority("JobWorkflow", [long]).fairness_key
    # A queue without fairness starts as before.
    assert queue(fairness=Fairness()).priority("JobWorkflow", [job("t")]) == Priority.default


# --- every start the fleet makes ---------------------------------------------------------


async def test_launch_and_schedules_set_the_fairness_key(client: Client) -> None:
    q = queue(
        schedules=[
            Schedule(
                id="nightly", workflow=JobWorkflow, args=[job("scheduled")], every=timedelta(days=1)
            )
        ]
    )
    launched = await launch(client, q, JobWorkflow.run, job("acme"))
    described = await launched.handle.describe()
    assert described.raw_description.workflow_execution_info.priority.fairness_key == "acme"
    await launched.handle.terminate("test done")

    assert await sync_schedules(client, [q]) == [(f"{q.name}-nightly", "created")]
    handle = client.get_schedule_handle(f"{q.name}-nightly")
    try:
        action = (await handle.describe()).schedule.action
        assert getattr(action, "priority", None) == Priority(fairness_key="scheduled")
        # In sync: a second sync compares the priority too and changes nothing.
        assert await sync_schedules(client, [q]) == [(f"{q.name}-nightly", "unchanged")]
    finally:
        await handle.delete()


def test_an_outside_client_sets_the_key_as_the_page_shows(
    temporal_address: str, tmp_path: Path
) -> None:
    # The docs' `temporal workflow start` line, as written (no worker needed to be recorded).
    (tmp_path / "order.json").write_text(json.dumps({"order_id": "A-2001"}))
    workflow_id = f"order-outside-{uuid.uuid4().hex[:8]}"
    common = ["--address", temporal_address, "--workflow-id", workflow_id]
    start = ["workflow", "start", "--task-queue", "outside-v1", "--type", "OrderWorkflow"]
    start += ["--fairness-key", "cust-7", "--input-file", "order.json"]
    started = subprocess.run(
        [temporal_cli(), *start, *common],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    described = subprocess.run(
        [temporal_cli(), "workflow", "describe", "-o", "json", *common],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(described.stdout)["workflowExecutionInfo"]
    assert info["priority"]["fairnessKey"] == "cust-7"
    subprocess.run(
        [temporal_cli(), "workflow", "terminate", *common], capture_output=True, check=False
    )


async def test_child_workflows_of_the_queue_get_their_own_inputs_key(client: Client) -> None:
    q = queue(rate_limits=RateLimits(activity_tasks=1000))
    parent = job("parent", parts=2)
    worker = build_worker(client, q, WorkerSettings.from_env({}))
    # A declared activity rate limit: every activity goes through the task queue; a fairness
    # key alone keeps eager starts.
    assert worker.config().get("disable_eager_activity_execution") is True
    keyed_only = build_worker(client, queue(), WorkerSettings.from_env({}))
    assert not keyed_only.config().get("disable_eager_activity_execution")
    async with worker:
        launched = await launch(client, q, JobWorkflow.run, parent)
        assert await launched.handle.result() == 2
    for part in range(2):
        child = client.get_workflow_handle(f"job-{parent.job_id}-{part}")
        info = (await child.describe()).raw_description.workflow_execution_info
        assert info.priority.fairness_key == "parent-part"


# --- the server's task queue config ------------------------------------------------------


async def test_apply_makes_the_server_match_and_a_second_apply_changes_nothing(
    client: Client,
) -> None:
    q = queue(
        fairness=Fairness(key="tenant", weights={"gold": 3.0}),
        rate_limits=RateLimits(activity_tasks=40.0, activity_tasks_per_key=0.1),
    )
    first = await apply_limits(client, q)
    assert {c.describe() for c in first} == {
        "workflow weight gold: none -> 3",
        "activity rate: none -> 40",
        "activity rate per key: none -> 0.1",
        "activity weight gold: none -> 3",
    }
    assert await apply_limits(client, q) == []  # 0.1 comes back as a 32-bit float: still equal
    live = await read_limits(client, q)
    assert live["activity"].rate == 40.0 and dict(live["workflow"].weights) == {"gold": 3.0}

    # An environment's override; a weight the declaration no longer has is removed.
    fewer = Queue(**{**q.__dict__, "fairness": Fairness(key="tenant")})
    changes = await apply_limits(
        client, fewer, rate_limits=RateLimits(activity_tasks=25.0), dry_run=True
    )
    assert LimitChange("activity", "rate", 40.0, 25.0) in changes
    assert LimitChange("workflow", "weight gold", 3.0, None) in changes
    assert (await read_limits(client, q))["activity"].rate == 40.0  # a dry run changes nothing
    await apply_limits(client, fewer, rate_limits=RateLimits(activity_tasks=25.0))
    live = await read_limits(client, q)
    assert live["activity"].rate == 25.0 and not live["workflow"].weights


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--activity-rate", "-3", "orders"], "--activity-rate must be a number above 0, not '-3'"),
        (
            ["--activity-rate-per-key", "fast", "orders"],
            "--activity-rate-per-key must be a number above 0, not 'fast'",
        ),
        (["--weight", "gold=nan", "orders"], "--weight gold must be a number above 0, not 'nan'"),
        (["--weight", "gold", "orders"], "--weight takes KEY=WEIGHT, not 'gold'"),
        (
            ["--weight", "gold=2000", "orders"],
            "--weight gold must be from 0.001 to 1000, not '2000'",
        ),
        (["--activity-rate", "5"], "rate and weight options apply to one queue: name it"),
        (
            ["--activity-rate", "5", "notifications"],
            "queue 'notifications' declares no activity rate limit, so its workers start "
            "activities eagerly, past the server's: declare one on the queue first",
        ),
    ],
)
def test_bad_numbers_on_the_command_line_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["limits", "apply", *argv]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {message}\n"


def test_fleet_limits_apply_and_show_from_the_command_line(temporal_address: str) -> None:
    env = {"TEMPORAL_ADDRESS": temporal_address}
    applied = run_cli("limits", "apply", "orders", "--activity-rate", "120", env=env)
    assert applied.returncode == 0, applied.stderr
    assert "orders-v1: changed activity rate" in applied.stdout
    # The server's fairness setting cannot be read back: the command says what it relies on.
    assert "matching.enableFairness=true" in applied.stderr
    shown = run_cli("limits", "show", "orders", "--json", env=env)
    rows = {r["type"]: r for r in json.loads(shown.stdout)}
    assert rows["activity"]["rate"] == 120.0
    assert rows["activity"]["declared"]["rate"] == 500.0
    assert rows["activity"]["fairness_key"] == "customer_id"
    # fleet status shows the key and the limits, and that the server differs from the code.
    status = run_cli("status", "orders", "--json", env=env)
    assert status.returncode == 0, status.stderr
    (orders,) = json.loads(status.stdout)["queues"]
    assert orders["limits"] == (
        "fairness key customer_id; activity rate 120/s; "
        "differs from the declaration (an override, or not applied yet)"
    )
    again = run_cli("limits", "apply", "orders", env=env)
    assert "orders-v1: changed activity rate: 120 -> 500" in again.stdout
    assert run_cli("limits", "apply", "orders", env=env).stdout == "limits orders-v1: unchanged\n"
    (orders,) = json.loads(run_cli("status", "orders", "--json", env=env).stdout)["queues"]
    assert orders["limits"] == "fairness key customer_id; activity rate 500/s"
