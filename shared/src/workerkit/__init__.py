"""workerkit: everything a Temporal queue service needs except its workflows and activities.

A service declares a :class:`Queue` and registers it under the ``workerkit.queues``
entry point; the ``fleet`` CLI then runs its worker with connection retry, logging,
tracing and metrics interceptors, one HTTP port for ``/metrics``, ``/healthz`` and
``/readyz``, and a graceful SIGTERM drain.
"""

import importlib
from typing import TYPE_CHECKING, Any

from workerkit import metrics
from workerkit._activities import activities_of
from workerkit._connection import connect, load_connect_config
from workerkit._converter import data_converter
from workerkit._env_settings import Accepts, EnvSettings, parse_duration, setting
from workerkit._exceptions import (
    ConfigurationError,
    ConnectError,
    LaunchError,
    SettingError,
    UnknownQueueError,
    UnknownWorkflowError,
    WorkerkitError,
)
from workerkit._failures import failure_reason, invalid_input
from workerkit._fairness import Fairness, RateLimits
from workerkit._ids import derived_id
from workerkit._interceptors import ObservabilityInterceptor
from workerkit._launcher import Launched, launch
from workerkit._logging import configure_logging
from workerkit._namespace import ensure_namespace
from workerkit._plugin import WorkerkitPlugin
from workerkit._registry import (
    ENTRY_POINT_GROUP,
    NAME_PATTERN,
    Queue,
    discover_queues,
    get_queue,
)
from workerkit._rollout_policy import PromCheck, RolloutPolicy, activity_failure_ratio
from workerkit._runner import exit_process, run_queues
from workerkit._schedule_sync import (
    UnknownScheduleError,
    declared_schedules,
    find_schedule,
    schedule_id,
    sync_schedules,
)
from workerkit._schedules import Schedule
from workerkit._settings import Tuning, WorkerSettings, state_path
from workerkit._strict import INVALID_INPUT
from workerkit._tracing import configure_tracing, tracing_interceptor
from workerkit._upgrade import continue_as_new_on_current_build, new_build_available
from workerkit._worker import build_worker

# The database support loads SQLAlchemy (and, for migrations, Alembic) when first used, not
# when a worker without state starts: the names resolve on first access (PEP 562).
_LAZY = {
    "DATABASE_ERROR": "workerkit._database",
    "DATABASE_UNAVAILABLE": "workerkit._database",
    "Database": "workerkit._database",
    "DatabaseUnavailable": "workerkit._database",
    "database_call": "workerkit._database",
    "database_errors": "workerkit._database",
    "database_url": "workerkit._database",
    "open_database": "workerkit._database",
    "SchemaState": "workerkit._migrations",
    "migrate": "workerkit._migrations",
    "schema_states": "workerkit._migrations",
}

if TYPE_CHECKING:
    from workerkit._database import (
        DATABASE_ERROR,
        DATABASE_UNAVAILABLE,
        Database,
        DatabaseUnavailable,
        database_call,
        database_errors,
        database_url,
        open_database,
    )
    from workerkit._migrations import SchemaState, migrate, schema_states


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'workerkit' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "DATABASE_ERROR",
    "DATABASE_UNAVAILABLE",
    "ENTRY_POINT_GROUP",
    "INVALID_INPUT",
    "NAME_PATTERN",
    "Accepts",
    "ConfigurationError",
    "ConnectError",
    "Database",
    "DatabaseUnavailable",
    "EnvSettings",
    "Fairness",
    "LaunchError",
    "Launched",
    "ObservabilityInterceptor",
    "PromCheck",
    "Queue",
    "RateLimits",
    "RolloutPolicy",
    "Schedule",
    "SchemaState",
    "SettingError",
    "Tuning",
    "UnknownQueueError",
    "UnknownScheduleError",
    "UnknownWorkflowError",
    "WorkerSettings",
    "WorkerkitError",
    "WorkerkitPlugin",
    "activities_of",
    "activity_failure_ratio",
    "build_worker",
    "configure_logging",
    "configure_tracing",
    "connect",
    "continue_as_new_on_current_build",
    "data_converter",
    "database_call",
    "database_errors",
    "database_url",
    "declared_schedules",
    "derived_id",
    "discover_queues",
    "ensure_namespace",
    "exit_process",
    "failure_reason",
    "find_schedule",
    "get_queue",
    "invalid_input",
    "launch",
    "load_connect_config",
    "metrics",
    "migrate",
    "new_build_available",
    "open_database",
    "parse_duration",
    "run_queues",
    "schedule_id",
    "schema_states",
    "setting",
    "state_path",
    "sync_schedules",
    "tracing_interceptor",
]
