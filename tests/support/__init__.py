"""Helpers for tests that drive real processes, by concern; none knows about any one service.

- :mod:`support.net`: free ports and HTTP probes
- :mod:`support.processes`: stopping a subprocess
- :mod:`support.temporal`: the ``temporal`` CLI, dev servers of a test's own, polling a query
- :mod:`support.fleet`: the ``fleet`` CLI, its worker and codec-server subprocesses
- :mod:`support.workers`: a queue's worker in the test process
- :mod:`support.history`: stored workflow histories (the replay tests)
- :mod:`support.browser`: the system Chromium the browser tests drive
- :mod:`support.cgroups`: a memory-limited cgroup for a worker subprocess
- :mod:`support.fixture_queue`: the queue the shared library's tests run instead of a service's

Everything but the fixture queue is re-exported here, so ``from support import X`` works for
any of them; the fixture queue is imported from its module, which loads the queue's package.
A service's own helpers live beside its tests (``tests/services/<queue>/``).
"""

from __future__ import annotations

from support.browser import SYSTEM_CHROMIUM, system_chromium
from support.fleet import (
    CodecServerProcess,
    WorkerProcess,
    fleet_cli,
    migrate_sqlite,
    run_cli,
    start_codec_server,
    start_worker,
    workdir_database,
)
from support.history import RecordHistory, histories_dir, history_path, stored
from support.net import distinct_free_ports, free_port, http_get
from support.processes import stop_process
from support.temporal import (
    DevServerWithUI,
    start_dev_server,
    start_dev_server_with_ui,
    temporal_cli,
    temporal_run,
    temporal_start,
    wait_for_query,
    workflow_events,
)
from support.workers import in_process_worker

__all__ = [
    "SYSTEM_CHROMIUM",
    "CodecServerProcess",
    "DevServerWithUI",
    "RecordHistory",
    "WorkerProcess",
    "distinct_free_ports",
    "fleet_cli",
    "free_port",
    "histories_dir",
    "history_path",
    "http_get",
    "in_process_worker",
    "migrate_sqlite",
    "run_cli",
    "start_codec_server",
    "start_dev_server",
    "start_dev_server_with_ui",
    "start_worker",
    "stop_process",
    "stored",
    "system_chromium",
    "temporal_cli",
    "temporal_run",
    "temporal_start",
    "wait_for_query",
    "workdir_database",
    "workflow_events",
]
