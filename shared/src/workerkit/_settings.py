"""Worker settings read from the environment, with typed defaults and one-line errors."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal, Self

from workerkit._env_settings import Accepts, EnvSettings, setting

__all__ = [
    "ENV_PREFIX",
    "STATE_DIR_VARIABLE",
    "Tuning",
    "WorkerSettings",
    "state_path",
]

STATE_DIR_VARIABLE = "WORKER_STATE_DIR"

ENV_PREFIX = "WORKER_"


def state_path(filename: str, environ: Mapping[str, str] | None = None) -> Path:
    """Where a service keeps local state by default: ``$WORKER_STATE_DIR/filename``.

    Without ``WORKER_STATE_DIR`` it is the temp directory: writable in a container with a
    read-only root file system. ``make dev`` points it at ``.data/``; a deployment at a volume.
    """
    env = os.environ if environ is None else environ
    return Path(env.get(STATE_DIR_VARIABLE) or tempfile.gettempdir()) / filename


@dataclass(frozen=True, kw_only=True)
class Tuning:
    """Per-queue defaults for worker concurrency; environment variables override them."""

    max_concurrent_activities: int = 100
    max_concurrent_workflow_tasks: int = 100
    max_concurrent_local_activities: int = 100
    max_cached_workflows: int = 1000
    max_pollers: int = 5


def _fraction(raw: str) -> float:
    value = float(raw.strip())
    if not 0.0 < value <= 1.0:
        raise ValueError(raw)
    return value


_FRACTION = Accepts("a number greater than 0 and at most 1 (e.g. 0.8)", _fraction)
_DURATION = Accepts.duration()


class WorkerSettings(EnvSettings, prefix=ENV_PREFIX):
    """How a worker process runs. Each field is read from ``WORKER_<FIELD NAME>``.

    Connection settings are not here: they come from the SDK's own ``TEMPORAL_*``
    variables and profile file through :py:mod:`temporalio.envconfig`. The fields that
    :class:`Tuning` has default to the queue's tuning.
    """

    http_host: str = setting(
        Accepts("a host or IP", str.strip), default="0.0.0.0", doc="HTTP bind address"
    )
    http_port: int = setting(
        Accepts.integer(min=0, max=65535),
        default=9000,
        doc="port for /metrics, /healthz, /readyz (0 picks a free one)",
    )
    log_level: str = setting(
        Accepts.choice("debug", "info", "warning", "error"), default="info", doc="log level"
    )
    log_format: Literal["json", "text"] = setting(
        Accepts.choice("json", "text"),
        default="json",
        doc="json lines (production) or readable text (dev)",
    )
    tuner: Literal["fixed", "resource"] = setting(
        Accepts.choice("fixed", "resource"),
        default="fixed",
        doc="fixed slot counts, or resource-based slots",
    )
    max_concurrent_activities: int = setting(
        Accepts.integer(min=1), default=100, doc="activity slots (fixed tuner)"
    )
    max_concurrent_workflow_tasks: int = setting(
        Accepts.integer(min=2), default=100, doc="workflow task slots (fixed tuner)"
    )
    max_concurrent_local_activities: int = setting(
        Accepts.integer(min=1), default=100, doc="local activity slots (fixed tuner)"
    )
    max_cached_workflows: int = setting(
        Accepts.integer(min=0), default=1000, doc="sticky workflow cache size"
    )
    max_pollers: int = setting(
        Accepts.integer(min=2),
        default=5,
        doc="pollers per task type (the maximum when autoscaling)",
    )
    resource_target_cpu: float = setting(_FRACTION, default=0.8, doc="CPU target (resource tuner)")
    resource_target_memory: float = setting(
        _FRACTION, default=0.8, doc="memory target (resource tuner)"
    )
    poller_autoscaling: bool = setting(
        Accepts.boolean(), default=False, doc="let the server scale pollers"
    )
    shutdown_timeout: timedelta = setting(
        _DURATION,
        default=timedelta(seconds=30),
        doc="time in-flight activities get to finish on SIGTERM",
    )
    connect_timeout: timedelta = setting(
        _DURATION,
        default=timedelta(seconds=60),
        doc="how long start-up keeps retrying the connection",
    )
    loop_stall_timeout: timedelta = setting(
        _DURATION,
        default=timedelta(seconds=30),
        doc="/healthz fails once the event loop has not run for this long (a blocked loop)",
    )
    server_check_interval: timedelta = setting(
        _DURATION,
        default=timedelta(seconds=5),
        doc="how often a ready worker checks the server; 2 failed checks turn /readyz to 503",
    )
    heartbeat_interval: timedelta = setting(
        _DURATION,
        # The SDK's default: `fleet status` flags a worker stale after three missed ones.
        default=timedelta(seconds=60),
        doc="how often the worker sends its heartbeat (slots, status) to the server's worker "
        "list, which fleet status shows",
    )
    workflow_sandbox: bool = setting(
        Accepts.boolean(),
        # Off: the sandbox is most of a worker's CPU, and what it would catch at run time is
        # caught before a build runs, by the test suite and the replay gate, both sandboxed.
        default=False,
        doc="run workflows in the SDK sandbox (make dev and the tests do); false, the default, "
        "runs them unsandboxed (the replay gate keeps the sandbox)",
    )
    versioning: Literal["auto", "on", "off"] = setting(
        Accepts.choice("auto", "on", "off"),
        default="auto",
        doc="Worker Deployment Versioning: auto = on when TEMPORAL_WORKER_BUILD_ID is set",
    )
    fleet_operations: bool = setting(
        Accepts.boolean(),
        default=True,
        doc="serve the fleet operations task queue (every queue's rollouts); a versioned "
        "worker serves its own build's replay gate either way",
    )
    versioning_bootstrap: bool = setting(
        Accepts.boolean(),
        default=True,
        doc="a versioned build of a deployment never routed before makes itself current",
    )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, tuning: Tuning | None = None
    ) -> Self:
        """Read settings from ``environ`` (default: the process environment).

        Args:
            environ: The variables to read.
            tuning: The queue's defaults for the tuning fields.

        Raises:
            SettingError: A variable is set to a value that is not accepted.
        """
        defaults = dataclasses.asdict(tuning or Tuning())
        return cls(**(defaults | cls._read(environ)))
