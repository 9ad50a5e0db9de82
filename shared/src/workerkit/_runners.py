"""Wrappers of the SDK's workflow runner and its instances, which the project stacks.

A runner (sandboxed or not) creates one instance per workflow run and hands it every
activation. ``_arity`` checks a run's start arguments before the SDK sees them, and
``_versioning`` stamps each completion with the versioning behavior the queue declares: each
wraps the runner below it and delegates the rest here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner

__all__ = ["WrappedInstance", "WrappingRunner"]


class WrappedInstance(WorkflowInstance):
    """An instance that delegates everything to the one it wraps."""

    def __init__(self, inner: WorkflowInstance) -> None:
        self._inner = inner

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        return self._inner.activate(act)

    def get_serialization_context(self, command_info: Any) -> Any:
        return self._inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self._inner.get_external_store_context(command_info)

    def get_info(self) -> Any:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()


class WrappingRunner(WorkflowRunner):
    """A runner that delegates to the one it wraps; subclasses wrap its instances."""

    def __init__(self, inner: WorkflowRunner) -> None:
        self._inner = inner

    def prepare_workflow(self, defn: Any) -> None:
        """Delegate to the wrapped runner."""
        self._inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        """Delegate to the wrapped runner."""
        return self._inner.create_instance(det)

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        """Delegate to the wrapped runner."""
        self._inner.set_worker_level_failure_exception_types(types)
