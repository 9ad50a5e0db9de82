"""Moving a long-running PINNED workflow to the current build when it continues as new.

A PINNED execution stays on the build that started it, so a type that runs for weeks by
continuing as new would keep its first build alive (and draining) for weeks, and builds would
pile up towards the server's limit on versions. With these, each new run starts on the
deployment's current build once a newer one exists, and the old build drains::

    await workflow.wait_condition(lambda: self._work or new_build_available())
    if new_build_available():
        continue_as_new_on_current_build(self._state)

The next run's first task is routed as an AUTO_UPGRADE one (to the current build), then the
type's own PINNED behavior applies. The run's input is the contract between builds: the new
build must accept what the old one passes on.
"""

from __future__ import annotations

from typing import Any, NoReturn

from temporalio import workflow
from temporalio.workflow import ContinueAsNewVersioningBehavior

__all__ = ["continue_as_new_on_current_build", "new_build_available"]


def new_build_available() -> bool:
    """Whether the server would route this execution to another build than it is pinned to.

    Re-evaluated at each workflow task: wait on it together with the run's own condition.
    """
    return workflow.info().is_target_worker_deployment_version_changed()


def continue_as_new_on_current_build(*args: Any, **kwargs: Any) -> NoReturn:
    """``workflow.continue_as_new``; the next run starts on the current build if it changed."""
    behavior = ContinueAsNewVersioningBehavior.AUTO_UPGRADE if new_build_available() else None
    workflow.continue_as_new(*args, initial_versioning_behavior=behavior, **kwargs)
