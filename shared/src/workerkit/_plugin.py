"""The project's SDK Plugin: one place that configures every Client, Worker and Replayer.

The data converter (strict JSON, and the payload encryption when a keyring is configured)
and the interceptors (tracing, structured logs and metrics, the argument-count check, then the
queue's own) are applied by the SDK's plugin mechanism to whatever the project creates: the
worker's client and worker, every client ``fleet`` opens, the replay gate's and the tests'
replayers. A Client connected with it passes it on to the Workers built on it.

It also picks the runner workflows run in. ``sandbox=True`` (the plugin's default, as the
SDK's) is the SDK's sandbox, which re-imports a workflow's module for every run and
intercepts calls such as ``datetime.now()`` or ``random.random()`` that would make a replay
diverge; workerkit is passed through (it has no state a workflow could leak between runs,
and re-importing it per run would only cost CPU). ``sandbox=False`` runs workflows
unsandboxed, which is what a worker does unless ``WORKER_WORKFLOW_SANDBOX=true``: a
replayer always keeps the sandbox, and so do the tests' workers, so the replay gate and the
test suite catch a non-deterministic call before a build runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import temporalio.client
import temporalio.worker
from temporalio.common import VersioningBehavior
from temporalio.plugin import SimplePlugin
from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from workerkit._arity import ArityInterceptor, ArityRunner
from workerkit._converter import data_converter
from workerkit._interceptors import ObservabilityInterceptor
from workerkit._tracing import tracing_interceptor
from workerkit._versioning import VersioningRunner

__all__ = ["PLUGIN_NAME", "SANDBOX_RESTRICTIONS", "WorkerkitPlugin"]

PLUGIN_NAME = "workerkit"

Interceptor = temporalio.client.Interceptor | temporalio.worker.Interceptor

SANDBOX_RESTRICTIONS = SandboxRestrictions.default.with_passthrough_modules("workerkit")


class WorkerkitPlugin(SimplePlugin):
    """The data converter and interceptors of the project, for Client, Worker and Replayer.

    Args:
        environ: Where the keyring variables are read (default: the process environment).
        interceptors: Interceptors to add after the project's own (e.g. a queue's).
        sandbox: Run workflows in the SDK sandbox (a Worker's choice; keep it for a Replayer).
        versioning_behaviors: The behavior each workflow type reports to a versioned worker's
            server (see :class:`VersioningRunner`); ``None`` for an unversioned worker.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        interceptors: Sequence[Interceptor] = (),
        sandbox: bool = True,
        versioning_behaviors: Mapping[str, VersioningBehavior] | None = None,
    ) -> None:
        converter = data_converter(environ)  # a malformed keyring fails here, once
        runner: WorkflowRunner = (
            SandboxedWorkflowRunner(restrictions=SANDBOX_RESTRICTIONS)
            if sandbox
            else UnsandboxedWorkflowRunner()
        )
        super().__init__(
            PLUGIN_NAME,
            data_converter=lambda _given: converter,
            interceptors=[
                tracing_interceptor(),
                ObservabilityInterceptor(),
                ArityInterceptor(),
                *interceptors,
            ],
            workflow_runner=VersioningRunner(ArityRunner(runner), versioning_behaviors),
        )
