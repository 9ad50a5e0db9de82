"""Worker settings read from the environment, with typed defaults and one-line errors."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from workerkit._errors import SettingError

__all__ = [
    "ENV_PREFIX",
    "STATE_DIR_VARIABLE",
    "Tuning",
    "WorkerSettings",
    "parse_duration",
    "state_path",
]

STATE_DIR_VARIABLE = "WORKER_STATE_DIR"

ENV_PREFIX = "WORKER_"

_T = TypeVar("_T")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_duration(text: str) -> timedelta:
    """Parse ``"30s"``, ``"1.5m"``, ``"2h"``, ``"7d"``, ``"250ms"`` or plain seconds.

    Raises:
        ValueError: The text is not a non-negative number with an optional unit.
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    number, unit = match.groups()
    try:
        return timedelta(seconds=float(number) * _UNIT_SECONDS[unit or "s"])
    except OverflowError:
        raise ValueError(f"duration too large: {text!r}") from None


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


# Each setting: (type label shown in errors, parser). Parsers raise ValueError.
def _int_range(lo: int, hi: int | None = None) -> tuple[str, Callable[[str], int]]:
    accepted = f"an integer from {lo} to {hi}" if hi is not None else f"an integer >= {lo}"

    def parse(raw: str) -> int:
        value = int(raw.strip())
        if value < lo or (hi is not None and value > hi):
            raise ValueError(raw)
        return value

    return accepted, parse


def _fraction() -> tuple[str, Callable[[str], float]]:
    def parse(raw: str) -> float:
        value = float(raw.strip())
        if not 0.0 < value <= 1.0:
            raise ValueError(raw)
        return value

    return "a number greater than 0 and at most 1 (e.g. 0.8)", parse


def _choice(*options: str) -> tuple[str, Callable[[str], str]]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError(raw)
        return value

    return "one of " + ", ".join(options), parse


def _bool() -> tuple[str, Callable[[str], bool]]:
    def parse(raw: str) -> bool:
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ValueError(raw)

    return "true or false", parse


def _duration() -> tuple[str, Callable[[str], timedelta]]:
    return "a duration such as 30s, 2m, 1h (plain numbers are seconds)", parse_duration


def _setting(
    default: Any, spec: tuple[str, Callable[[str], Any]], doc: str, *, from_tuning: bool = False
) -> Any:
    return field(
        default=default,
        metadata={"accepted": spec[0], "parse": spec[1], "doc": doc, "from_tuning": from_tuning},
    )


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """How a worker process runs. Each field is read from ``WORKER_<FIELD NAME>``.

    Connection settings are not here: they come from the SDK's own ``TEMPORAL_*``
    variables and profile file through :py:mod:`temporalio.envconfig`.
    """

    http_host: str = _setting("0.0.0.0", ("a host or IP", str.strip), "HTTP bind address")
    http_port: int = _setting(
        9000, _int_range(0, 65535), "port for /metrics, /healthz, /readyz (0 picks a free one)"
    )
    log_level: str = _setting("info", _choice("debug", "info", "warning", "error"), "log level")
    log_format: Literal["json", "text"] = _setting(
        "json", _choice("json", "text"), "json lines (production) or readable text (dev)"
    )
    tuner: Literal["fixed", "resource"] = _setting(
        "fixed", _choice("fixed", "resource"), "fixed slot counts, or resource-based slots"
    )
    max_concurrent_activities: int = _setting(
        100, _int_range(1), "activity slots (fixed tuner)", from_tuning=True
    )
    max_concurrent_workflow_tasks: int = _setting(
        100, _int_range(2), "workflow task slots (fixed tuner)", from_tuning=True
    )
    max_concurrent_local_activities: int = _setting(
        100, _int_range(1), "local activity slots (fixed tuner)", from_tuning=True
    )
    max_cached_workflows: int = _setting(
        1000, _int_range(0), "sticky workflow cache size", from_tuning=True
    )
    max_pollers: int = _setting(
        5, _int_range(2), "pollers per task type (the maximum when autoscaling)", from_tuning=True
    )
    resource_target_cpu: float = _setting(0.8, _fraction(), "CPU target (resource tuner)")
    resource_target_memory: float = _setting(0.8, _fraction(), "memory target (resource tuner)")
    poller_autoscaling: bool = _setting(False, _bool(), "let the server scale pollers")
    shutdown_timeout: timedelta = _setting(
        timedelta(seconds=30), _duration(), "time in-flight activities get to finish on SIGTERM"
    )
    connect_timeout: timedelta = _setting(
        timedelta(seconds=60), _duration(), "how long start-up keeps retrying the connection"
    )
    loop_stall_timeout: timedelta = _setting(
        timedelta(seconds=30),
        _duration(),
        "/healthz fails once the event loop has not run for this long (a blocked loop)",
    )
    server_check_interval: timedelta = _setting(
        timedelta(seconds=5),
        _duration(),
        "how often a ready worker checks the server; 2 failed checks turn /readyz to 503",
    )
    workflow_sandbox: bool = _setting(
        True,
        _bool(),
        "run workflows in the SDK sandbox; false is the fast mode (tests and the replay gate "
        "keep the sandbox)",
    )
    versioning: Literal["auto", "on", "off"] = _setting(
        "auto",
        _choice("auto", "on", "off"),
        "Worker Deployment Versioning: auto = on when TEMPORAL_WORKER_BUILD_ID is set",
    )
    versioning_bootstrap: bool = _setting(
        True,
        _bool(),
        "a versioned build of a deployment never routed before makes itself current",
    )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, tuning: Tuning | None = None
    ) -> WorkerSettings:
        """Read settings from ``environ`` (default: the process environment).

        Args:
            environ: The variables to read.
            tuning: The queue's defaults for the tuning fields.

        Raises:
            SettingError: A variable is set to a value that is not accepted.
        """
        env = os.environ if environ is None else environ
        tuning = tuning or Tuning()
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = ENV_PREFIX + f.name.upper()
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                if f.metadata["from_tuning"]:
                    values[f.name] = getattr(tuning, f.name)
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError:
                raise SettingError(name, raw, f.metadata["accepted"]) from None
        return cls(**values)

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """Return ``(variable, accepted values, description)`` for every setting."""
        return [
            (ENV_PREFIX + f.name.upper(), f.metadata["accepted"], f.metadata["doc"])
            for f in fields(cls)
        ]
