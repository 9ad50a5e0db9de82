"""The project's Plugin: every Client, Worker and Replayer the project makes goes through it,
and a queue adds its own interceptors in its declaration."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import VersioningBehavior
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    Replayer,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)
from workerkit import Queue, WorkerkitPlugin, WorkerSettings, build_worker

SEEN: list[str] = []


class _Inbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        SEEN.append(workflow.info().workflow_id)
        return await super().execute_workflow(input)


class Recorder(Interceptor):
    """A queue's own interceptor: records each workflow execution it sees."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _Inbound


# Unsandboxed: the sandbox would re-import this test module, which it cannot validate.
@workflow.defn(sandboxed=False)
class Echo:
    @workflow.run
    async def run(self, text: str) -> str:
        return text


QUEUE = Queue(
    name="plugintest",
    workflows=[Echo],
    versioning=VersioningBehavior.PINNED,
    interceptors=[Recorder()],
)


async def test_a_queues_interceptors_run_after_the_projects_on_worker_and_replayer(
    client: Client,
) -> None:
    workflow_id = f"plugin-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, QUEUE, WorkerSettings.from_env({})):
        result = await client.execute_workflow(
            Echo.run, "hi", id=workflow_id, task_queue=QUEUE.task_queue
        )
    assert result == "hi"
    assert workflow_id in SEEN
    # The replayer, configured by the same plugin, runs the queue's interceptor too.
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    SEEN.clear()
    replayer = Replayer(
        workflows=[Echo], plugins=[WorkerkitPlugin(interceptors=QUEUE.interceptors)]
    )
    replayed = await replayer.replay_workflow(history)
    assert replayed.replay_failure is None and [workflow_id] == SEEN


def test_the_plugin_gives_clients_the_projects_converter_and_tracing() -> None:
    plugin = WorkerkitPlugin({"FLEET_ENCRYPTION_KEYS": "k1:" + "A" * 43 + "="})
    config = plugin.configure_client({"interceptors": []})  # type: ignore[typeddict-item]
    assert config["data_converter"].payload_codec is not None  # the keyring's codec
    assert [type(i).__name__ for i in config["interceptors"]] == ["TracingInterceptor"]
