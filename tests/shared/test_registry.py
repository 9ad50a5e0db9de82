"""The queue registry: discovery through entry points, declarations and deterministic ids."""

from __future__ import annotations

import re

import pytest
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import VersioningBehavior
from workerkit import (
    ConfigurationError,
    Queue,
    RolloutPolicy,
    UnknownQueueError,
    UnknownWorkflowError,
    activities_of,
    discover_queues,
    get_queue,
)
from workerkit._settings import WorkerSettings
from workerkit._worker import build_worker

from support.fixture_queue import FixtureWorkflow, Parcel


@activity.defn
async def noop() -> None:
    """An activity for declarations under test."""


@pytest.mark.usefixtures("fixture_queue")
def test_installed_queues_are_discovered() -> None:
    queues = discover_queues()
    assert "fixture" in queues
    assert queues["fixture"].task_queue == "fixture-v1"
    assert "FixtureWorkflow" in queues["fixture"].workflow_types()


@pytest.mark.usefixtures("fixture_queue")
def test_unknown_queue_lists_the_known_ones() -> None:
    with pytest.raises(UnknownQueueError) as info:
        get_queue("payments")
    assert "unknown queue 'payments'" in str(info.value)
    assert "fixture" in str(info.value)


@pytest.mark.usefixtures("fixture_queue")
def test_unknown_workflow_lists_the_known_ones() -> None:
    with pytest.raises(UnknownWorkflowError, match="known workflows: FixtureWorkflow"):
        get_queue("fixture").workflow_class("RefundWorkflow")


@pytest.mark.parametrize("name", ["Orders", "2fast", "with-dash", "snake_case", "", "a" * 31])
def test_queue_names_are_letters_and_digits(name: str) -> None:
    with pytest.raises(ConfigurationError, match="lower-case letter followed by"):
        Queue(name=name, activities=[noop])


def test_a_queue_must_declare_something() -> None:
    with pytest.raises(ConfigurationError, match="declares no workflows or activities"):
        Queue(name="empty")


def test_version_names_the_task_queue() -> None:
    assert Queue(name="billing", version=3, activities=[noop]).task_queue == "billing-v3"


@pytest.mark.usefixtures("fixture_queue")
def test_workflow_ids_are_deterministic() -> None:
    queue = get_queue("fixture")
    parcel = Parcel("A-17", "n", "a", "tok", 1)
    assert queue.workflow_id("FixtureWorkflow", [parcel]) == "parcel-A-17"
    plain = Queue(name="plain", workflows=[FixtureWorkflow], versioning=VersioningBehavior.PINNED)
    first = plain.workflow_id("FixtureWorkflow", [{"a": 1, "b": [2]}])
    assert first == plain.workflow_id("FixtureWorkflow", [{"b": [2], "a": 1}])
    assert first != plain.workflow_id("FixtureWorkflow", [{"a": 2, "b": [2]}])
    assert first.startswith("plain-FixtureWorkflow-")


class Steps:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @activity.defn
    async def second(self) -> str:
        return f"{self.prefix}: 2"

    @activity.defn
    async def first(self) -> str:
        return f"{self.prefix}: 1"

    async def helper(self) -> str:
        return "not an activity"


class MoreSteps(Steps):
    @activity.defn
    async def third(self) -> str:
        return "3"

    @activity.defn
    async def first(self) -> str:
        return "overridden"


async def test_activities_are_the_bound_defn_methods_in_declaration_order() -> None:
    steps = Steps("a")
    found = activities_of(steps)
    assert [a.__name__ for a in found] == ["second", "first"]
    assert [await a() for a in found] == ["a: 2", "a: 1"]
    more = activities_of(MoreSteps("b"))
    assert [a.__name__ for a in more] == ["second", "first", "third"]
    assert await more[1]() == "overridden"
    queue = Queue(name="steps", activities=lambda: activities_of(steps))
    assert [a.__name__ for a in queue.build_activities()] == ["second", "first"]


def test_activities_of_refuses_a_class_or_an_instance_without_activities() -> None:
    with pytest.raises(ConfigurationError, match="pass an instance"):
        activities_of(Steps)
    with pytest.raises(ConfigurationError, match="object has no methods declared with @activity"):
        activities_of(object())


def test_rollout_gate_workflow_must_be_a_type_of_the_queue() -> None:
    with pytest.raises(ConfigurationError, match="rollout gate workflow 'Nope'"):
        Queue(
            name="gated",
            workflows=[FixtureWorkflow],
            versioning=VersioningBehavior.PINNED,
            rollout=RolloutPolicy(gate_workflow="Nope"),
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"steps": (50, 10, 100)}, "must increase"),
        ({"steps": (10, 50)}, "the last must be 100"),
        ({"max_failure_ratio": 2.0}, "within 0..1"),
        ({"insufficient_data": "shrug"}, "one of hold, rollback"),
    ],
)
def test_rollout_policy_refuses_bad_values(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RolloutPolicy(**changes)  # type: ignore[arg-type]


@workflow.defn(name="Defaulted")
class DefaultedWorkflow:
    @workflow.run
    async def run(self, request: str, retries: int = 3) -> str:
        return request * retries


@workflow.defn(name="DefaultedSignal")
class DefaultedSignalWorkflow:
    @workflow.run
    async def run(self, request: str) -> str:
        return request

    @workflow.signal
    def poke(self, *reasons: str) -> None:
        pass


@pytest.mark.parametrize(
    ("cls", "what"),
    [
        (
            DefaultedWorkflow,
            "DefaultedWorkflow.run has parameters whose count is not fixed (retries)",
        ),
        (DefaultedSignalWorkflow, "signal poke has parameters whose count is not fixed (reasons)"),
    ],
)
def test_a_workflow_whose_argument_count_is_not_fixed_is_refused(cls: type, what: str) -> None:
    """The strict converter refuses a call with the wrong argument count before any code runs;
    a default would make a shorter call valid, so the declaration is refused instead."""
    with pytest.raises(ConfigurationError, match=re.escape(what)):
        Queue(name="loose", workflows=[cls], versioning=VersioningBehavior.PINNED)


@activity.defn
async def defaulted(name: str, times: int = 1) -> None:
    """An activity whose argument count is not fixed."""


def test_an_activity_whose_argument_count_is_not_fixed_is_refused_by_the_worker() -> None:
    queue = Queue(name="loose", activities=[defaulted])
    client = Client(service_client=None)  # type: ignore[arg-type]  # never called
    with pytest.raises(ConfigurationError, match=r"activity defaulted has parameters .*\(times\)"):
        build_worker(client, queue, WorkerSettings.from_env({}))
