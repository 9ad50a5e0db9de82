"""launch(): typed by the workflow's run method (or named by its type), idempotent by id."""

from __future__ import annotations

import pytest
from temporalio import workflow
from temporalio.client import Client
from workerkit import Queue, UnknownWorkflowError, launch

from support.fixture_queue import FixtureWorkflow, Parcel, new_parcel


async def test_the_run_method_and_the_type_name_start_the_same_execution(
    client: Client, fixture_queue: Queue
) -> None:
    parcel = new_parcel("launch")
    # No worker polls the queue here: the execution waits for one, which is all this needs.
    typed = await launch(client, fixture_queue, FixtureWorkflow.run, parcel)
    assert typed.started and typed.workflow_id == f"parcel-{parcel.parcel_id}"
    named = await launch(client, fixture_queue, "FixtureWorkflow", parcel)
    assert not named.started and named.run_id == typed.run_id
    await typed.handle.terminate("test done")


async def test_a_method_the_queue_does_not_register_is_refused(
    client: Client, fixture_queue: Queue
) -> None:
    match = "no workflow 'ElsewhereWorkflow'; known workflows"
    with pytest.raises(UnknownWorkflowError, match=match):
        await launch(client, fixture_queue, ElsewhereWorkflow.run, "note")

    with pytest.raises(UnknownWorkflowError, match=r"no workflow 'NotAWorkflow\.run'"):
        await launch(client, fixture_queue, NotAWorkflow.run, new_parcel("launch"))


@workflow.defn
class ElsewhereWorkflow:
    """A workflow that another queue registers."""

    @workflow.run
    async def run(self, note: str) -> None:
        return None


class NotAWorkflow:
    async def run(self, parcel: Parcel) -> None:
        """A run method whose class is not declared with @workflow.defn."""
