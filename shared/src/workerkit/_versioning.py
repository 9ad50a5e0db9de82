"""Worker Deployment Versioning: which deployment and build a worker belongs to.

A versioned worker declares a Worker Deployment (one per queue by default) and a build id.
The server routes each workflow by its versioning behavior: a PINNED execution stays on
the build that started it, an AUTO_UPGRADE one moves to the deployment's current build at
its next workflow task. Old builds keep running until the server reports them drained,
so deploying changed workflow code never replays a running execution on code it did not
start with, unless that execution asked to upgrade (and its code guards the change with
``workflow.patched()``).

The version comes from the variables temporal-worker-controller injects:

- ``TEMPORAL_DEPLOYMENT_NAME``: default, the queue's name;
- ``TEMPORAL_WORKER_BUILD_ID``: default, a hash of the installed code of the queue's
  package and of workerkit (the image build sets it from a build argument).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import VersioningBehavior as ProtoBehavior
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import (
    WorkerDeploymentConfig,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)
from workerkit._exceptions import SettingError
from workerkit._runners import WrappedInstance, WrappingRunner

__all__ = [
    "BUILD_ID_VARIABLE",
    "DEPLOYMENT_NAME_VARIABLE",
    "VersioningRunner",
    "WorkerVersion",
    "code_build_id",
    "resolve_version",
]

DEPLOYMENT_NAME_VARIABLE = "TEMPORAL_DEPLOYMENT_NAME"
BUILD_ID_VARIABLE = "TEMPORAL_WORKER_BUILD_ID"

# The server joins deployment name and build id with "." in its older API, so a name may not
# contain one; both are bounded by the server's identifier length.
_DEPLOYMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_/:@-]{0,253}$")
_BUILD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,253}$")


@dataclass(frozen=True, kw_only=True)
class WorkerVersion:
    """The Worker Deployment version one queue's worker runs as.

    Attributes:
        deployment_name: The Worker Deployment (by default the queue's name).
        build_id: This build's id.
        build_id_source: Where the build id came from (the variable, or ``code``).
        versioned: Whether the worker tells the server its version (Worker Versioning on).
    """

    deployment_name: str
    build_id: str
    build_id_source: str
    versioned: bool

    @property
    def sdk_version(self) -> WorkerDeploymentVersion:
        """The SDK's value for this version."""
        return WorkerDeploymentVersion(deployment_name=self.deployment_name, build_id=self.build_id)

    def deployment_config(self) -> WorkerDeploymentConfig:
        """The SDK worker option for this version (versioned workers only).

        Each type's behavior is reported by :class:`VersioningRunner`; the default is only
        what the SDK requires to accept types that declare none in ``@workflow.defn``, and
        PINNED is the behavior that can never move an execution to code it did not start on.
        """
        return WorkerDeploymentConfig(
            version=self.sdk_version,
            use_worker_versioning=True,
            default_versioning_behavior=VersioningBehavior.PINNED,
        )


def _package_files(package: str) -> list[tuple[str, Path]]:
    # (path relative to the package, file): the same for a source tree and an installed
    # wheel, so the dev tree and the image built from it agree on the build id.
    spec = importlib.util.find_spec(package)
    if spec is None:
        return []
    roots = [Path(r) for r in spec.submodule_search_locations or []]
    if not roots:
        return [(Path(spec.origin).name, Path(spec.origin))] if spec.origin else []
    return sorted((p.relative_to(root).as_posix(), p) for root in roots for p in root.rglob("*.py"))


def code_build_id(packages: tuple[str, ...]) -> str:
    """A build id derived from the source of ``packages``: equal code, equal id.

    Content-addressed, so rebuilding an image from unchanged code keeps its build id (and a
    deploy of it is a no-op), while any change to workflow code gives a new one.
    """
    digest = hashlib.sha256()
    for package in sorted(set(packages)):
        for rel, path in _package_files(package):
            digest.update(f"{package}/{rel}\0".encode())
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return "code-" + digest.hexdigest()[:12]


def resolve_version(
    *,
    queue_name: str,
    packages: tuple[str, ...],
    mode: str,
    environ: Mapping[str, str],
) -> WorkerVersion:
    """Work out a queue's deployment version from the environment.

    Args:
        queue_name: The queue's name: the default deployment name.
        packages: The packages whose code the default build id hashes.
        mode: ``auto`` (versioned when ``TEMPORAL_WORKER_BUILD_ID`` is set), ``on`` or ``off``.
        environ: The variables to read.

    Raises:
        SettingError: The deployment name or build id is not accepted.
    """
    name = (environ.get(DEPLOYMENT_NAME_VARIABLE) or "").strip() or queue_name
    if not _DEPLOYMENT_NAME.match(name):
        raise SettingError(
            DEPLOYMENT_NAME_VARIABLE,
            name,
            "letters, digits and _ / : @ - (no '.'), at most 254 characters",
        )
    raw_build = (environ.get(BUILD_ID_VARIABLE) or "").strip()
    if raw_build:
        if not _BUILD_ID.match(raw_build):
            raise SettingError(
                BUILD_ID_VARIABLE,
                raw_build,
                "letters, digits and . _ + - (starting with a letter or digit), "
                "at most 254 characters",
            )
        build_id, source = raw_build, BUILD_ID_VARIABLE
    else:
        build_id, source = code_build_id(packages), "code"
    versioned = mode == "on" or (mode == "auto" and source == BUILD_ID_VARIABLE)
    return WorkerVersion(
        deployment_name=name, build_id=build_id, build_id_source=source, versioned=versioned
    )


class VersioningRunner(WrappingRunner):
    """Reports each workflow type's declared versioning behavior, or none when unversioned.

    The behavior a workflow task completes with is what the server routes the execution by.
    A versioned worker reports the behavior the queue declares for the type; an unversioned
    one reports none, because the server refuses a behavior from a worker that is not
    versioned (the SDK would send a ``@workflow.defn`` declaration regardless).
    """

    def __init__(
        self, inner: WorkflowRunner, behaviors: Mapping[str, VersioningBehavior] | None
    ) -> None:
        super().__init__(inner)
        self._behaviors = behaviors

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        """Wrap the wrapped runner's instance."""
        behavior = ProtoBehavior.VERSIONING_BEHAVIOR_UNSPECIFIED
        if self._behaviors is not None:
            # A type the queue does not declare (its catch-all) reports its own behavior.
            own = det.defn.versioning_behavior or VersioningBehavior.UNSPECIFIED
            declared = self._behaviors.get(det.defn.name or "", own)
            behavior = ProtoBehavior.ValueType(declared.value)
        return _ReportedBehavior(super().create_instance(det), behavior)


class _ReportedBehavior(WrappedInstance):
    def __init__(self, inner: WorkflowInstance, behavior: ProtoBehavior.ValueType) -> None:
        super().__init__(inner)
        self._behavior = behavior

    def activate(self, act: Any) -> Any:
        completion = super().activate(act)
        if completion.HasField("successful"):
            completion.successful.versioning_behavior = self._behavior
        return completion
