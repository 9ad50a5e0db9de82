"""workerkit: everything a Temporal queue service needs except its workflows and activities.

A service declares a :class:`Queue` and registers it under the ``workerkit.queues``
entry point; the ``fleet`` CLI then runs its worker with connection retry, logging,
tracing and metrics interceptors, one HTTP port for ``/metrics``, ``/healthz`` and
``/readyz``, and a graceful SIGTERM drain.
"""

from workerkit._connection import connect, load_connect_config
from workerkit._converter import data_converter
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
from workerkit._errors import (
    ConfigurationError,
    ConnectError,
    LaunchError,
    SettingError,
    UnknownQueueError,
    UnknownWorkflowError,
    WorkerkitError,
)
from workerkit._interceptors import ObservabilityInterceptor
from workerkit._launcher import Launched, launch
from workerkit._logging import configure_logging
from workerkit._migrations import SchemaState, migrate, schema_states
from workerkit._namespace import ensure_namespace
from workerkit._plugin import WorkerkitPlugin
from workerkit._registry import (
    ENTRY_POINT_GROUP,
    NAME_PATTERN,
    Queue,
    discover_queues,
    get_queue,
)
from workerkit._runner import exit_process, run_queues
from workerkit._schedules import (
    Schedule,
    UnknownScheduleError,
    declared_schedules,
    find_schedule,
    schedule_id,
    sync_schedules,
)
from workerkit._settings import Tuning, WorkerSettings, parse_duration, state_path
from workerkit._strict import INVALID_INPUT
from workerkit._tracing import configure_tracing, tracing_interceptor
from workerkit._worker import build_worker

__all__ = [
    "DATABASE_ERROR",
    "DATABASE_UNAVAILABLE",
    "ENTRY_POINT_GROUP",
    "INVALID_INPUT",
    "NAME_PATTERN",
    "ConfigurationError",
    "ConnectError",
    "Database",
    "DatabaseUnavailable",
    "LaunchError",
    "Launched",
    "ObservabilityInterceptor",
    "Queue",
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
    "build_worker",
    "configure_logging",
    "configure_tracing",
    "connect",
    "data_converter",
    "database_call",
    "database_errors",
    "database_url",
    "declared_schedules",
    "discover_queues",
    "ensure_namespace",
    "exit_process",
    "find_schedule",
    "get_queue",
    "launch",
    "load_connect_config",
    "migrate",
    "open_database",
    "parse_duration",
    "run_queues",
    "schedule_id",
    "schema_states",
    "state_path",
    "sync_schedules",
    "tracing_interceptor",
]
