"""The worker process: uvloop, probes, connection, workers, signals and a clean exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import NoReturn

import uvloop
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker
from workerkit._connection import connect, load_connect_config
from workerkit._deployments import bootstrap_current
from workerkit._encryption import encrypts, load_keyring
from workerkit._exceptions import ConfigurationError, ConnectError
from workerkit._http import Health, HealthServer
from workerkit._logging import configure_logging
from workerkit._metrics import WORKER_BUILD_INFO, SdkMetrics
from workerkit._ops import build_ops_workers
from workerkit._registry import Queue
from workerkit._settings import WorkerSettings
from workerkit._tracing import configure_tracing
from workerkit._versioning import WorkerVersion, resolve_version
from workerkit._worker import build_worker
from workerkit.metrics import bucket_overrides

__all__ = ["exit_process", "run_queues"]

_log = logging.getLogger("workerkit.runner")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def exit_process(code: int) -> NoReturn:
    """Flush logs and output, then end the process without interpreter finalization.

    temporalio 1.34 and 1.35 can crash (SIGSEGV/SIGABRT) while the interpreter finalizes
    after a clean shutdown, as the SDK's native threads are torn down. Everything this
    process owes the outside world (logs, stdout, spans) is flushed first, so skipping
    finalization loses nothing and makes the exit code the one we chose.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def run_queues(queues: Sequence[Queue], *, environ: Mapping[str, str] | None = None) -> int:
    """Run workers for ``queues`` in this process until SIGTERM/SIGINT; return an exit code.

    Raises:
        ConfigurationError: A setting or the connection configuration is invalid
            (checked before anything starts).
    """
    settings = WorkerSettings.from_env(environ)
    per_queue = {q.name: WorkerSettings.from_env(environ, tuning=q.tuning) for q in queues}
    env = os.environ if environ is None else environ
    versions = {
        q.name: resolve_version(
            queue_name=q.name, packages=q.code_packages(), mode=settings.versioning, environ=env
        )
        for q in queues
    }
    load_connect_config(environ)
    load_keyring(environ)  # a malformed keyring stops the worker before it starts
    encrypts(environ)  # and so does an unknown FLEET_ENCRYPTION_MODE
    if any(q.migrations for q in queues):
        from workerkit._database import database_url  # only queues that keep state need it

        database_url(environ)  # so does a malformed DATABASE_URL
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    return uvloop.run(_serve(queues, settings, per_queue, versions, environ))


async def _serve(
    queues: Sequence[Queue],
    settings: WorkerSettings,
    per_queue: Mapping[str, WorkerSettings],
    versions: Mapping[str, WorkerVersion],
    environ: Mapping[str, str] | None,
) -> int:
    tracer_provider = configure_tracing(environ)
    metrics = SdkMetrics(
        histogram_buckets=bucket_overrides([m for q in queues for m in q.metrics]),
        heartbeat_interval=settings.heartbeat_interval,
    )
    health = Health(stall_after=settings.loop_stall_timeout.total_seconds())
    try:
        server = HealthServer(
            host=settings.http_host,
            port=settings.http_port,
            health=health,
            metrics=metrics.exposition,
        )
    except OSError as err:  # in use, not an address of this host, not resolvable
        raise ConfigurationError(
            f"WORKER_HTTP_HOST={settings.http_host!r} WORKER_HTTP_PORT={settings.http_port}: "
            f"cannot listen there: {err.strerror or err}"
        ) from None
    server.start()
    names = [q.task_queue for q in queues]
    for q in queues:
        v = versions[q.name]
        WORKER_BUILD_INFO.labels(
            q.task_queue, v.deployment_name, v.build_id, str(v.versioned).lower()
        ).set(1)
    _log.info(
        "worker starting",
        extra={"task_queues": names, "http_port": server.port, **_version_fields(versions)},
    )

    stop = asyncio.Event()
    finished = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if finished.is_set():
            return
        if stop.is_set():
            _log.warning("second signal: exiting without waiting for activities")
            exit_process(EXIT_INTERRUPTED)
        _log.info("signal received: draining", extra={"signal": signal.Signals(signum).name})
        health.set_not_ready("draining")
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    heartbeat = asyncio.ensure_future(_beat(health))
    try:
        return await _run_workers(
            queues, settings, per_queue, versions, environ, metrics, health, stop
        )
    finally:
        heartbeat.cancel()
        finished.set()  # from here on, signals have nothing left to interrupt
        server.stop()
        if tracer_provider is not None:
            tracer_provider.shutdown()


async def _run_workers(
    queues: Sequence[Queue],
    settings: WorkerSettings,
    per_queue: Mapping[str, WorkerSettings],
    versions: Mapping[str, WorkerVersion],
    environ: Mapping[str, str] | None,
    metrics: SdkMetrics,
    health: Health,
    stop: asyncio.Event,
) -> int:
    connecting = asyncio.ensure_future(
        connect(timeout=settings.connect_timeout, runtime=metrics.runtime, environ=environ)
    )
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not connecting.done():
        connecting.cancel()
        _log.info("stopped before connecting")
        return EXIT_OK
    try:
        client = connecting.result()
    except ConnectError as err:
        _log.error(str(err))
        return EXIT_FAILURE
    except ConfigurationError as err:
        _log.error(str(err))
        return EXIT_USAGE

    try:
        workers = [build_worker(client, q, per_queue[q.name], versions[q.name]) for q in queues]
        workers += build_ops_workers(client, queues, versions, settings)
    except ConfigurationError as err:  # e.g. a service's own setting, read by its factory
        _log.error(str(err))
        return EXIT_USAGE
    except Exception:
        _log.exception("could not create the workers")
        return EXIT_FAILURE
    interval = settings.server_check_interval.total_seconds()
    # The first database check runs while the workers start polling, and readiness waits
    # for it: a worker never reports ready on a schema it has not looked at, and the
    # one-time cost of loading the migrations is paid at start-up, not under load.
    database_checked = asyncio.Event()
    database_watch = asyncio.ensure_future(
        _watch_database(queues, environ, health, interval, stop, database_checked)
    )
    running = [asyncio.ensure_future(w.run()) for w in workers]
    await _wait_until_polling(workers, running, stop)
    if settings.versioning_bootstrap and not stop.is_set():
        # Before reporting ready: a first build that is ready is also routed to.
        await _bootstrap(client, versions.values())
    checked = asyncio.ensure_future(database_checked.wait())
    await asyncio.wait(
        {checked, database_watch, stopping, *running}, return_when=asyncio.FIRST_COMPLETED
    )
    checked.cancel()
    if not stop.is_set() and not any(t.done() for t in running):
        health.set_ready()
        fields = {"task_queues": [q.task_queue for q in queues], **_version_fields(versions)}
        ready, reason = health.readiness()
        if ready:
            _log.info("worker ready", extra=fields)
        else:  # polling, but /readyz answers 503: say why, once (the watch says when it clears)
            _log.warning("worker polling but not ready", extra=fields | {"reason": reason})

    watches = [asyncio.ensure_future(_watch_server(client, health, interval, stop)), database_watch]
    await asyncio.wait({stopping, *running}, return_when=asyncio.FIRST_COMPLETED)
    for watch in watches:
        watch.cancel()
    health.set_not_ready("draining")
    fatal = [t for t in running if t.done() and not stop.is_set()]
    _log.info(
        "shutting down: polling stopped, waiting for in-flight activities",
        extra={"timeout_s": settings.shutdown_timeout.total_seconds()},
    )
    await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
    results = await asyncio.gather(*running, return_exceptions=True)
    stopping.cancel()
    errors = [r for r in results if isinstance(r, BaseException)]
    if fatal or errors:
        for failure in errors:
            _log.error("worker failed", exc_info=failure)
        if not errors:
            _log.error("worker stopped unexpectedly")
        return EXIT_FAILURE
    _log.info("worker stopped cleanly")
    return EXIT_OK


async def _beat(health: Health) -> None:
    # Runs on the event loop: when the loop is blocked, the beats stop and /healthz says so.
    while True:
        health.beat()
        await asyncio.sleep(1.0)


UNREACHABLE = "cannot reach the Temporal server"
FAILED_CHECKS_BEFORE_NOT_READY = 2


async def _watch_server(
    client: Client, health: Health, interval: float, stop: asyncio.Event
) -> None:
    """Turn /readyz to 503 while the server does not answer, and back once it does.

    The SDK keeps retrying its polls on its own; what Kubernetes must know is that this
    worker cannot take work meanwhile (no traffic is routed by it, but a rollout waits).
    """
    failures = 0
    while not stop.is_set():
        await asyncio.sleep(interval)
        try:
            await client.service_client.check_health(timeout=timedelta(seconds=interval))
        except Exception as err:  # an RPC error, a timeout: the server did not answer
            failures += 1
            if failures == FAILED_CHECKS_BEFORE_NOT_READY and not stop.is_set():
                reason = f"{UNREACHABLE}: {' '.join(str(err).split()) or type(err).__name__}"
                health.report_problem("temporal", reason)
                _log.warning("not ready: the server does not answer", extra={"reason": reason})
            continue
        if failures >= FAILED_CHECKS_BEFORE_NOT_READY:
            health.clear_problem("temporal")
            _log.info("ready again: the server answers")
        failures = 0


async def _watch_database(
    queues: Sequence[Queue],
    environ: Mapping[str, str] | None,
    health: Health,
    interval: float,
    stop: asyncio.Event,
    checked: asyncio.Event,
) -> None:
    """Turn /readyz to 503 while the database does not answer or its schema is behind.

    Activities meanwhile fail retryably and are retried; what Kubernetes must know is that
    this worker cannot do their work. A schema newer than this build (a migration applied
    ahead of a rollout, expand-and-contract style) is fine. ``checked`` is set once the
    first check is done (at once when no queue keeps state).
    """
    stateful = [q for q in queues if q.migrations]
    if not stateful:
        checked.set()
        return
    from workerkit._database import DatabaseUnavailable, open_database
    from workerkit._migrations import schema_states

    db = open_database(environ)
    failures = 0
    was_behind = False
    while not stop.is_set():
        try:
            states = await asyncio.to_thread(schema_states, db, stateful)
        except DatabaseUnavailable as err:
            failures += 1
            if failures == FAILED_CHECKS_BEFORE_NOT_READY:
                health.report_problem("database", str(err))
                _log.warning("not ready: the database does not answer", extra={"reason": str(err)})
        else:
            if failures >= FAILED_CHECKS_BEFORE_NOT_READY:
                _log.info("the database answers again")
            failures = 0
            behind = [s for s in states if s.behind]
            if behind:
                health.report_problem(
                    "database",
                    "database schema behind this build ("
                    + ", ".join(
                        f"{s.queue} at {s.current or 'nothing'}, needs {s.head}" for s in behind
                    )
                    + "): run `fleet db migrate`",
                )
                was_behind = True
            else:
                health.clear_problem("database")
                if was_behind:
                    _log.info("the database schema is up to date")
                was_behind = False
        checked.set()
        await asyncio.sleep(interval)


def _version_fields(versions: Mapping[str, WorkerVersion]) -> dict[str, object]:
    builds = {v.build_id for v in versions.values()}
    deployments = {v.deployment_name for v in versions.values()}
    return {
        "build_id": builds.pop() if len(builds) == 1 else sorted(builds),
        "deployment": deployments.pop() if len(deployments) == 1 else sorted(deployments),
        "versioned": any(v.versioned for v in versions.values()),
    }


async def _bootstrap(client: Client, versions: Iterable[WorkerVersion]) -> None:
    for v in {(v.deployment_name, v.build_id): v for v in versions if v.versioned}.values():
        try:
            if await bootstrap_current(client, v.deployment_name, v.build_id):
                _log.info(
                    "deployment had never been routed: this build is now its current build",
                    extra={"deployment": v.deployment_name, "build_id": v.build_id},
                )
        except RPCError as err:  # routing is an operator's job too: never fatal here
            _log.warning(
                "could not check the deployment's routing",
                extra={"deployment": v.deployment_name, "reason": err.message},
            )


async def _wait_until_polling(
    workers: Sequence[Worker], running: Sequence[asyncio.Future[None]], stop: asyncio.Event
) -> None:
    # Worker.run() validates the namespace before it starts polling; is_running
    # turns true only after that succeeded.
    while not stop.is_set() and not any(t.done() for t in running):
        if all(w.is_running for w in workers):
            return
        await asyncio.sleep(0.05)
