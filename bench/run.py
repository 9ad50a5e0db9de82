"""Benchmark the project's worker against a bare SDK worker: variants interleaved in one run.

    uv run python bench/run.py [--rounds 8] [--max-rounds 40] [--workflows 200] [--json PATH]
    (also --variants, --spread, --concurrency, --partitions, --profile, --log-dir; --help)

The bench starts its own Temporal dev server on free 127.0.0.1 ports, runs one warm-up
run of every variant (discarded), then measured rounds: in each round, the two variants of
every comparison run back to back (the comparisons, and the two sides of each, in an order
shuffled per round), so both sides of a ratio ran under the same machine load. After
``--rounds`` rounds it stops as soon as every comparison's spread is within ``--spread``
percent, else after ``--max-rounds``. Each run starts a fresh worker subprocess on a fresh
task queue, runs one workflow per task queue (not measured), then its workflows with at
most ``--concurrency`` in flight, reads the worker's CPU time and memory, then sends SIGTERM.

Variants (``--variants`` picks some; a comparison needs both of its variants):
  bare           ``bare_worker.py``: ``temporalio.worker.Worker`` with default SDK options
                 (sandbox, converter), no interceptors, the stdlib event loop.
  bare+libs      the same, having imported the packages every project worker must load
                 (uvloop, prometheus-client, the OpenTelemetry SDK and the SDK's
                 contrib.opentelemetry) without using them: the memory floor they set.
  project        ``project_worker.py``: ``workerkit.run_queues`` with the project's defaults,
                 as deployed: the plugin (strict converter, tracing, logging and metrics
                 interceptors), workflows unsandboxed, the SDK Prometheus runtime, /readyz,
                 uvloop; JSON logs at info to a file; no OTLP endpoint, so no span is exported.
  project+trace  the same, exporting every span (``OTEL_TRACES_SAMPLER=always_on``) over
                 OTLP/HTTP to a sink in this process that drops them; its CPU is read
                 after the batch processor's next export (at most 5 s after the last
                 result, idle time counted too), so every span of the run is in its figure.
  project-sandbox  workflows in the SDK sandbox: ``WORKER_WORKFLOW_SANDBOX=true``.
  project-16q    16 bench queues (16 workers) in one process, the workflows spread over them.
  *-chain        ``ChainWorkflow``: 20 activities in a row (history growth).
  *-saga         the orders saga (``OrderWorkflow`` with its activities on a fresh SQLite
                 ledger per run, confirmed by a signal sent with the start).
Every worker gets the same slot, cache and poller counts (``TUNING``), the same interpreter,
and compiled bytecode as in the images. The dev server gives each task queue one partition
(``--partitions``), so that server dispatch noise stays out of the figures.

Per run:
  CPU/wf      the worker process's CPU time (user + system, /proc/<pid>/stat) from the
              end of the warm-up workflows to the last result, per workflow: the headline,
              far steadier than wall-clock figures on a shared machine where the dev
              server takes most of the CPU.
  throughput  workflows / wall time from the first start call to the last result.
  p50, p99    per-workflow latency from the start call to its result.
  ready       subprocess launch to ready: ``is_running`` checked every 50 ms by both (the
              bare worker then prints a line; the project answers 200 on /readyz, probed
              every 10 ms, which adds up to 10 ms).
  RSS         VmRSS after the run and VmHWM (peak), from /proc/<pid>/status; with
              ``bare+libs`` in the run, the project's RSS is also set against that floor.
A comparison divides CPU per workflow of its two back-to-back runs, round by round;
its figure is the median of those ratios and its spread the half-width of the median's
distribution-free 95% confidence interval (order statistics; min to max below 6 rounds),
as a percentage of the median. Targets are checked on those medians, and on the medians of
start-to-ready and RSS of ``project`` against ``bare``. A MISS still exits 0 (the figures
are the output); an error (a failed workflow, a worker that does not start or stop cleanly)
exits 1. temporalio may crash at interpreter exit after a clean shutdown, so a signal exit
of the bare worker is accepted; the project worker must exit 0.

``--profile`` then samples one more run of each variant with py-spy (``--gil``, so only
the thread holding the interpreter counts) and prints the functions on top of the stack.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import platform
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from asyncio.subprocess import DEVNULL, PIPE
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import temporalio
from temporalio.client import Client
from workerkit import exit_process
from workerkit._net import free_port, free_ports

from project_worker import queues
from workload import BenchWorkflow, ChainWorkflow, Workload

BENCH_DIR = Path(__file__).resolve().parent
Worker = Literal["project", "bare"]
SCRIPTS: dict[Worker, Path] = {
    "project": BENCH_DIR / "project_worker.py",
    "bare": BENCH_DIR / "bare_worker.py",
}
# Identical concurrency for both sides: workerkit's defaults, which are also the SDK's.
TUNING = {
    "WORKER_MAX_CONCURRENT_ACTIVITIES": "100",
    "WORKER_MAX_CONCURRENT_WORKFLOW_TASKS": "100",
    "WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES": "100",
    "WORKER_MAX_CACHED_WORKFLOWS": "1000",
    "WORKER_MAX_POLLERS": "5",
}
# The saga's settings on both sides: no simulated packing time, so a run measures the
# worker and the ledger, not a sleep.
SAGA_ENV = {"ORDERS_PACK_SECONDS_PER_ITEM": "0"}
READY_LINE = b"ready"  # what bare_worker.py prints
SERVER_START_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
PROBE_INTERVAL_S = 0.01
WORKFLOW_TIMEOUT = timedelta(minutes=2)
READY_DELTA_TARGET_S = 0.25  # project - bare start to ready, at most
RSS_TARGET = 1.10  # project / bare RSS after a run, at most
# OTel's batch span processor sends a batch once 512 spans wait, and what is left every 5 s
# (OTEL_BSP_SCHEDULE_DELAY): the trace variant's CPU is read after that last export.
TRACE_EXPORT_DELAY_S = 5.0
PROFILE_ROUND = 99  # the index of the profiled runs, which no figure includes
METRICS = (  # RunResult field, table label, number format
    ("cpu_ms_per_wf", "CPU/wf ms", ".2f"),
    ("throughput_wf_s", "wf/s", ".1f"),
    ("p50_ms", "p50 ms", ".1f"),
    ("p99_ms", "p99 ms", ".1f"),
    ("ready_s", "ready s", ".3f"),
    ("rss_mib", "RSS MiB", ".1f"),
    ("peak_rss_mib", "peak MiB", ".1f"),
)


@dataclass(frozen=True)
class Variant:
    """One way of running a worker."""

    name: str
    worker: Worker
    workload: Workload = "echo"
    queues: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    trace_export: bool = False

    @property
    def share(self) -> float:
        """Its part of ``--workflows``: a chain runs 20 activities, a saga 6 steps."""
        return {"echo": 1.0, "chain": 0.2, "saga": 0.5}[self.workload]


VARIANTS = {
    v.name: v
    for v in (
        Variant("bare", "bare"),
        Variant("bare+libs", "bare", env={"BENCH_REQUIRED_IMPORTS": "1"}),
        Variant("project", "project"),
        Variant("project+trace", "project", trace_export=True),
        Variant("project-sandbox", "project", env={"WORKER_WORKFLOW_SANDBOX": "true"}),
        Variant("project-16q", "project", queues=16),
        Variant("bare-chain", "bare", "chain"),
        Variant("project-chain", "project", "chain"),
        Variant("bare-saga", "bare", "saga", env=SAGA_ENV),
        Variant("project-saga", "project", "saga", env=SAGA_ENV),
    )
}


@dataclass(frozen=True)
class Comparison:
    """CPU per workflow of ``numerator`` over ``denominator``, at most ``target``."""

    label: str
    numerator: str
    denominator: str
    target: float | None


COMPARISONS = (
    # The default runs workflows unsandboxed: the 0.90 for defaults, 0.70 for that mode.
    Comparison("project / bare SDK, 1 activity", "project", "bare", 0.70),
    Comparison("project / bare SDK, orders saga", "project-saga", "bare-saga", 0.90),
    Comparison("project / bare SDK, 20 activities", "project-chain", "bare-chain", None),
    Comparison("trace export at 100% / project", "project+trace", "project", 1.05),
    Comparison("sandboxed project / bare SDK", "project-sandbox", "bare", None),
    Comparison("16 queues / 1 queue", "project-16q", "project", 1.10),
)


class BenchError(Exception):
    """The bench could not produce a valid measurement."""


@dataclass(frozen=True)
class RunResult:
    variant: str
    round: int  # 0 is the warm-up
    task_queues: list[str]
    workflows: int
    cpu_ms_per_wf: float
    throughput_wf_s: float
    p50_ms: float
    p99_ms: float
    ready_s: float
    rss_mib: float
    peak_rss_mib: float
    exit_code: int
    pair: str = ""  # the comparison this run is one side of, in its round ("" if none)


class OtlpSink:
    """An OTLP/HTTP endpoint that accepts and drops exports, counting them."""

    def __init__(self) -> None:
        self.exports = 0
        self.last_export = 0.0  # time.monotonic() of the last one answered
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.exports += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                sink.last_export = time.monotonic()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    async def drained(self, delay_s: float) -> None:
        """Wait for the exporter's next export, or ``delay_s`` (its schedule delay) without
        one: the worker then holds no span of the run it has not sent."""
        seen, deadline = self.exports, time.monotonic() + delay_s
        # The sink counts in its own thread, so a poll rather than an asyncio.Event.
        while self.exports == seen and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def base_env(pycache: Path | None = None) -> dict[str, str]:
    """This process's environment without Temporal/worker/OTel/database/service settings.

    With ``pycache``, workers write and read compiled bytecode there, as the images ship it
    (``UV_COMPILE_BYTECODE``): the sandbox re-imports a workflow's module for every run, and
    without bytecode it would compile the source each time, a cost production never pays.
    """
    scrubbed = ("TEMPORAL_", "WORKER_", "OTEL_", "DATABASE_", "ORDERS_", "FLEET_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(scrubbed)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")]))
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def read_status(pid: int) -> dict[str, int]:
    """The numeric fields of ``/proc/<pid>/status``, read once (memory in kB)."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        first = rest.split()[:1]
        if first and first[0].isdigit():
            values[key] = int(first[0])
    return values


def read_rss_mib(pid: int) -> tuple[float, float]:
    """Return (VmRSS, VmHWM) of ``pid`` in MiB."""
    status = read_status(pid)
    return status["VmRSS"] / 1024, status["VmHWM"] / 1024


def read_cpu_s(pid: int) -> float:
    """The process's CPU time so far, user + system (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return f"\n--- last lines of {path} ---\n" + "\n".join(tail) if tail else ""


async def stop(proc: asyncio.subprocess.Process, grace_s: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM ``proc`` and return its exit code; kill it if it outlives ``grace_s``."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(proc.wait(), grace_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise BenchError(f"pid {proc.pid} still running {grace_s:g}s after SIGTERM") from None


async def start_server(
    temporal: str, partitions: int, log: Path, *, namespaces: Sequence[str] = ()
) -> tuple[asyncio.subprocess.Process, Client]:
    """Start a dev server on free loopback ports, with ``namespaces`` besides ``default``;
    return it and a client connected to ``default``."""
    port, http_port = free_ports(2)
    argv = ["server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port)]
    argv += ["--http-port", str(http_port), "--metrics-port", "0"]
    for namespace in namespaces:
        argv += ["--namespace", namespace]
    for key in ("matching.numTaskqueueReadPartitions", "matching.numTaskqueueWritePartitions"):
        argv += ["--dynamic-config-value", f"{key}={partitions}"]
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            temporal, *argv, stdin=DEVNULL, stdout=out, stderr=out, env=base_env()
        )
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        try:
            return proc, await Client.connect(f"127.0.0.1:{port}")
        except RuntimeError as err:
            if proc.returncode is not None or time.monotonic() > deadline:
                await stop(proc)
                raise BenchError(f"dev server did not start: {err}{log_tail(log)}") from err
            await asyncio.sleep(0.2)


def probe(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:  # refused, or HTTPError 503 while starting
        return False


async def wait_ready(worker: Worker, proc: asyncio.subprocess.Process, http_port: int) -> None:
    if worker == "bare":
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT_S)
        if line.strip() != READY_LINE:
            raise BenchError(f"exited before ready, with code {await proc.wait()}")
        return
    await wait_readyz(proc, http_port)


async def wait_readyz(
    proc: asyncio.subprocess.Process, http_port: int, timeout_s: float = READY_TIMEOUT_S
) -> None:
    """Probe a project worker's ``/readyz`` until it answers 200."""
    url = f"http://127.0.0.1:{http_port}/readyz"
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(probe, url):
        if proc.returncode is not None:
            raise BenchError(f"exited before ready, with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise BenchError(f"/readyz not 200 within {timeout_s:g}s")
        await asyncio.sleep(PROBE_INTERVAL_S)


def saga_order(order_id: str) -> Any:
    from orders.models import Address, LineItem, Order

    return Order(
        order_id=order_id,
        customer_id="bench",
        items=[LineItem("sku-widget", 1, 500)],
        shipping_address=Address("Bench", "1 Rue de Rivoli", "Paris", "75001", "FR"),
        payment_token="tok_visa",
    )


async def run_workflow(client: Client, workload: Workload, task_queue: str, wf_id: str) -> None:
    """Run one workflow of ``workload`` to its end and check its result."""
    if workload == "saga":
        from orders.models import Confirmation
        from orders.workflows import OrderWorkflow

        handle = await client.start_workflow(
            OrderWorkflow.run,
            saga_order(wf_id),
            id=wf_id,
            task_queue=task_queue,
            execution_timeout=WORKFLOW_TIMEOUT,
            start_signal="confirm",
            start_signal_args=[Confirmation("bench")],
        )
        result: str = (await handle.result()).order_id
    else:
        result = await client.execute_workflow(
            BenchWorkflow.run if workload == "echo" else ChainWorkflow.run,
            wf_id,
            id=wf_id,
            task_queue=task_queue,
            execution_timeout=WORKFLOW_TIMEOUT,
        )
    if result != wf_id:
        raise BenchError(f"workflow {wf_id} returned {result!r}, expected {wf_id!r}")


async def drive(
    client: Client,
    workload: Workload,
    task_queues: list[str],
    count: int,
    concurrency: int,
    *,
    id_prefix: str = "",
) -> tuple[float, list[float]]:
    """Run ``count`` workflows over ``task_queues``, ``concurrency`` at a time.

    Returns:
        Workflows per second, and each workflow's latency in seconds.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> float:
        task_queue = task_queues[i % len(task_queues)]
        async with gate:
            begin = time.perf_counter()
            await run_workflow(client, workload, task_queue, f"{id_prefix}{task_queue}-{i}")
            return time.perf_counter() - begin

    begin = time.perf_counter()
    latencies = await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - begin), list(latencies)


def prepare_saga_state(state_dir: Path, name: str) -> None:
    """A fresh SQLite ledger for one saga run, migrated to the orders queue's head."""
    from workerkit import open_database
    from workerkit._migrations import migrate

    from orders.queue import QUEUE

    state_dir.mkdir(parents=True)
    db = open_database({"WORKER_STATE_DIR": str(state_dir)})
    try:
        migrate(db, [dataclasses.replace(QUEUE, name=name)])
    finally:
        db.dispose()


async def start_profiler(pid: int, output: Path) -> asyncio.subprocess.Process:
    """Sample ``pid`` with py-spy until it exits, writing collapsed stacks to ``output``.

    Non-blocking sampling never pauses the worker; ``--gil`` counts only the thread that
    holds the interpreter, which is where CPU time goes in a Python worker.
    """
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise BenchError("--profile needs py-spy on PATH (pip install py-spy)")
    argv = ["record", "--pid", str(pid), "--nonblocking", "--gil", "--rate", "250"]
    argv += ["--format", "raw", "--output", str(output)]
    return await asyncio.create_subprocess_exec(
        py_spy, *argv, stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL
    )


def hottest(collapsed: Path, count: int = 12) -> list[tuple[float, str]]:
    """The frames with the most samples on top of the stack, as (share, frame)."""
    own: dict[str, int] = {}
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frame = stack.rsplit(";", 1)[-1]
        own[frame] = own.get(frame, 0) + int(samples)
    total = max(sum(own.values()), 1)
    return [(n / total, frame) for frame, n in sorted(own.items(), key=lambda kv: -kv[1])][:count]


@dataclass
class Bench:
    """What every run shares: the server's client, the environment, logs, the OTLP sink."""

    client: Client
    env: dict[str, str]
    log_dir: Path
    workflows: int
    concurrency: int
    sink: OtlpSink

    def env_for(self, variant: Variant) -> dict[str, str]:
        env = self.env | dict(variant.env)
        if variant.worker == "project":
            env |= {"WORKER_LOG_LEVEL": "info", "WORKER_LOG_FORMAT": "json"}
        if variant.trace_export:
            env |= {
                "OTEL_EXPORTER_OTLP_ENDPOINT": self.sink.endpoint,
                "OTEL_SERVICE_NAME": "bench",
                "OTEL_TRACES_SAMPLER": "always_on",
            }
        return env

    async def run(
        self, variant: Variant, index: int, *, pair: str = "", profile: Path | None = None
    ) -> RunResult:
        name = f"b{index}" + "".join(ch for ch in variant.name if ch.isalnum())
        count = max(2, round(self.workflows * variant.share))
        env = self.env_for(variant)
        if variant.workload == "saga":
            state = self.log_dir / "state" / name
            prepare_saga_state(state, name)
            env["WORKER_STATE_DIR"] = str(state)
        task_queues = [q.task_queue for q in queues(name, variant.workload, variant.queues)]
        log = self.log_dir / f"{name}.log"
        if variant.worker == "project":
            http_port = free_port()
            env |= {"WORKER_HTTP_HOST": "127.0.0.1", "WORKER_HTTP_PORT": str(http_port)}
            argv, stdout = [name, variant.workload, str(variant.queues)], DEVNULL
        else:
            http_port, argv, stdout = 0, [task_queues[0], variant.workload], PIPE
        with log.open("wb") as stderr:
            launched = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(SCRIPTS[variant.worker]),
                *argv,
                env=env,
                stdin=DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        try:
            await wait_ready(variant.worker, proc, http_port)
            ready_s = time.perf_counter() - launched
            # One workflow per task queue first, outside the figures: what a worker does once
            # (each worker's first task, first activity, lazy imports) is not a per-workflow
            # cost, and 16 workers would otherwise pay it 16 times within the measured run.
            warm = len(task_queues)
            await drive(self.client, variant.workload, task_queues, warm, warm, id_prefix="warm-")
            spy = None if profile is None else await start_profiler(proc.pid, profile)
            cpu_before = read_cpu_s(proc.pid)
            throughput, latencies = await drive(
                self.client, variant.workload, task_queues, count, self.concurrency
            )
            if variant.trace_export:  # the export of the run's spans is part of its cost
                await self.sink.drained(TRACE_EXPORT_DELAY_S + 0.5)
            cpu_ms_per_wf = (read_cpu_s(proc.pid) - cpu_before) * 1000 / count
            rss, peak = read_rss_mib(proc.pid)
            code = await stop(proc)
            if spy is not None:
                await spy.wait()
            if code != 0 and (variant.worker == "project" or code > 0):
                raise BenchError(f"exited with code {code} after SIGTERM")
        except Exception as err:
            raise BenchError(f"{variant.name}, round {index}: {err}{log_tail(log)}") from err
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        centiles = statistics.quantiles(latencies, n=100, method="inclusive")
        return RunResult(
            variant=variant.name,
            round=index,
            task_queues=task_queues,
            workflows=count,
            cpu_ms_per_wf=cpu_ms_per_wf,
            throughput_wf_s=throughput,
            p50_ms=centiles[49] * 1000,
            p99_ms=centiles[98] * 1000,
            ready_s=ready_s,
            rss_mib=rss,
            peak_rss_mib=peak,
            exit_code=code,
            pair=pair,
        )


def describe(r: RunResult) -> str:
    label = "warm-up" if r.round == 0 else f"round {r.round}"
    return (
        f"{label:>8} {r.variant:<14} CPU {r.cpu_ms_per_wf:6.2f} ms/wf  "
        f"{r.throughput_wf_s:6.1f} wf/s  p50 {r.p50_ms:7.1f} ms  p99 {r.p99_ms:7.1f} ms  "
        f"ready {r.ready_s:5.2f} s  RSS {r.rss_mib:6.1f} MiB (peak {r.peak_rss_mib:6.1f})"
    )


def median_interval(values: list[float]) -> tuple[float, float]:
    """The distribution-free ~95% confidence interval of the median of ``values``.

    The k-th smallest and k-th largest values, for the largest k whose coverage
    (1 - 2 P[Binomial(n, 1/2) < k]) is at least 95%; min and max when n is too small.
    """
    ordered, n = sorted(values), len(values)
    k = 1
    while k < n // 2:
        below = sum(math.comb(n, i) for i in range(k + 1)) / 2**n  # P[X <= k]
        if 1 - 2 * below < 0.95:
            break
        k += 1
    return ordered[k - 1], ordered[n - k]


def compare(comparison: Comparison, runs: list[RunResult]) -> dict[str, Any] | None:
    """The comparison's ratio per round, their median and spread; None if it did not run."""
    by_round = {
        (r.variant, r.round): r.cpu_ms_per_wf
        for r in runs
        if r.round > 0 and r.pair == comparison.label
    }
    rounds = sorted({i for _, i in by_round})
    ratios = [
        by_round[(comparison.numerator, i)] / by_round[(comparison.denominator, i)]
        for i in rounds
        if (comparison.numerator, i) in by_round and (comparison.denominator, i) in by_round
    ]
    if not ratios:
        return None
    median = statistics.median(ratios)
    low, high = median_interval(ratios)
    return asdict(comparison) | {
        "ratios": ratios,
        "median": median,
        "interval": [low, high],
        "spread_pct": 100 * max(median - low, high - median) / median,
        "pass": None if comparison.target is None else median <= comparison.target,
    }


def comparisons(runs: list[RunResult]) -> list[dict[str, Any]]:
    return [c for c in (compare(c, runs) for c in COMPARISONS) if c is not None]


def memory_ratios(medians: Mapping[str, Mapping[str, float]]) -> list[dict[str, Any]]:
    """RSS after a run: the project against the bare SDK (the target), and, with
    ``bare+libs`` in the run, how much of that the required libraries alone take
    (no target: ``pass`` is None)."""
    rss = {name: figures["rss_mib"] for name, figures in medians.items()}
    pairs = (
        ("RSS after a run, project / bare", "project", "bare", RSS_TARGET),
        ("RSS, bare + required imports / bare", "bare+libs", "bare", None),
        ("RSS, project / bare + required imports", "project", "bare+libs", None),
    )
    ratios = [
        (label, rss[num] / rss[den], target)
        for label, num, den, target in pairs
        if num in rss and den in rss
    ]
    return [
        {
            "label": label,
            "value": value,
            "target": target,
            "pass": None if target is None else value <= target,
        }
        for label, value, target in ratios
    ]


def summarize(
    args: argparse.Namespace, variants: list[Variant], runs: list[RunResult], exports: int
) -> dict[str, Any]:
    measured = [r for r in runs if r.round > 0]
    medians = {
        v.name: {
            key: statistics.median(getattr(r, key) for r in measured if r.variant == v.name)
            for key, *_ in METRICS
        }
        for v in variants
    }
    compared = comparisons(runs)
    # Start to ready and memory, project against bare: what the table prints below the ratios.
    figures: list[dict[str, Any]] = []
    if "project" in medians and "bare" in medians:
        delta = medians["project"]["ready_s"] - medians["bare"]["ready_s"]
        figures.append(
            {
                "label": "start to ready, project - bare (s)",
                "value": delta,
                "target": READY_DELTA_TARGET_S,
                "pass": delta <= READY_DELTA_TARGET_S,
            }
        )
    figures += memory_ratios(medians)
    checks = [f for f in figures if f["target"] is not None]
    checks += [
        {"label": c["label"], "value": c["median"], "target": c["target"], "pass": c["pass"]}
        for c in compared
        if c["target"] is not None
    ]
    return {
        "config": {
            "rounds": max((r.round for r in measured), default=0),
            "min_rounds": args.rounds,
            "max_rounds": args.max_rounds,
            "spread_target_pct": args.spread,
            "workflows": args.workflows,
            "concurrency": args.concurrency,
            "partitions": args.partitions,
            "variants": [asdict(v) | {"env": dict(v.env)} for v in variants],
            "tuning": TUNING,
        },
        "environment": {
            "python": platform.python_version(),
            "temporalio": temporalio.__version__,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "runs": [asdict(r) for r in runs],
        "median": medians,
        "comparisons": compared,
        "figures": figures,
        "checks": checks,
        "pass": all(c["pass"] for c in checks),
        "otlp_exports": exports,
    }


def round_plan(variants: list[Variant], order: random.Random) -> list[tuple[str, Variant]]:
    """One round: each comparison's two runs back to back, the comparisons and the two
    sides of each in a shuffled order; a variant in no comparison runs once on its own.

    Back to back, the two sides of a ratio run seconds apart, so the machine's slow swings
    in load (the main noise on a shared host) hit both alike; a variant in several
    comparisons (``project`` is in three) runs once for each.
    """
    present = {v.name: v for v in variants}
    active = [c for c in COMPARISONS if c.numerator in present and c.denominator in present]
    plan: list[tuple[str, Variant]] = []
    for c in order.sample(active, len(active)):
        sides = [present[c.numerator], present[c.denominator]]
        plan += [(c.label, v) for v in order.sample(sides, 2)]
    paired = {v.name for _, v in plan}
    plan += [("", v) for v in variants if v.name not in paired]
    return plan


def settled(args: argparse.Namespace, runs: list[RunResult], rounds: int) -> bool:
    """Whether enough rounds ran: the minimum, and every spread within the target."""
    if rounds < args.rounds:
        return False
    return all(c["spread_pct"] <= args.spread for c in comparisons(runs))


async def bench(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    variants = [VARIANTS[name] for name in args.variants]
    sink = OtlpSink()
    server_log = log_dir / "temporal-server.log"
    server, client = await start_server(args.temporal, args.partitions, server_log)
    env = base_env(log_dir / "pycache") | TUNING
    env["TEMPORAL_ADDRESS"] = client.service_client.config.target_host
    runner = Bench(client, env, log_dir, args.workflows, args.concurrency, sink)
    order = random.Random(args.seed)
    runs: list[RunResult] = []
    try:
        for variant in variants:  # the warm-up, which also writes the bytecode
            runs.append(await runner.run(variant, 0))
            print(describe(runs[-1]), flush=True)
        for index in range(1, args.max_rounds + 1):
            for pair, variant in round_plan(variants, order):
                runs.append(await runner.run(variant, index, pair=pair))
                print(describe(runs[-1]), flush=True)
            if settled(args, runs, index):
                break
        for variant in variants if args.profile else ():
            output = log_dir / f"profile-{variant.name}.txt"
            await runner.run(variant, PROFILE_ROUND, profile=output)
            print(f"profile of {variant.name} ({output}), samples on top of the stack:")
            for share, frame in hottest(output):
                print(f"  {share:6.1%}  {frame}")
    except BenchError as err:
        if server.returncode is not None:  # the likelier cause: say so, with its last words
            raise BenchError(
                f"{err}: the dev server exited with code {server.returncode}{log_tail(server_log)}"
            ) from err
        raise
    finally:
        await stop(server, grace_s=10)
        sink.close()
    return summarize(args, variants, runs, sink.exports)


def verdict(passed: bool | None) -> str:
    return "" if passed is None else ("PASS" if passed else "MISS")


def table(report: dict[str, Any]) -> str:
    cfg, med = report["config"], report["median"]
    lines = [
        f"medians of {cfg['rounds']} rounds, {cfg['workflows']} echo workflows per run "
        f"(chain x0.2, saga x0.5), {cfg['concurrency']} in flight (warm-ups excluded)",
        f"{'variant':<14}" + "".join(f"{label:>11}" for _, label, _ in METRICS),
    ]
    for name, figures in med.items():
        lines.append(f"{name:<14}" + "".join(f"{figures[k]:11{fmt}}" for k, _, fmt in METRICS))
    lines += ["", "CPU per workflow, ratio per round: median, ±spread, rounds, target"]
    for c in report["comparisons"]:
        target = "" if c["target"] is None else f"<= {c['target']:.2f} {verdict(c['pass'])}"
        lines.append(
            f"  {c['label']:<36} {c['median']:6.3f}  ±{c['spread_pct']:4.1f}%  "
            f"n={len(c['ratios']):<3} {target}".rstrip()
        )
    for line in report["figures"]:
        target = "" if line["target"] is None else f"<= {line['target']:.2f} "
        lines.append(
            f"  {line['label']:<36} {line['value']:6.3f}  {target}{verdict(line['pass'])}".rstrip()
        )
    lines.append(f"verdict: {'PASS' if report['pass'] else 'MISS'}")
    return "\n".join(lines)


@contextmanager
def log_directory(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        yield Path(tmp)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text}")
    return value


def variant_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown variant {', '.join(unknown) or '(none)'}; known: {', '.join(VARIANTS)}"
        )
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=positive, default=8, help="measured rounds, at least")
    parser.add_argument("--max-rounds", type=positive, default=40, help="measured rounds, at most")
    parser.add_argument(
        "--spread", type=float, default=3.0, help="stop once every spread is within this %%"
    )
    parser.add_argument("--workflows", type=positive, default=200, help="echo workflows per run")
    parser.add_argument("--concurrency", type=positive, default=50, help="workflows in flight")
    parser.add_argument(
        "--variants",
        type=variant_names,
        default=list(VARIANTS),
        help=f"comma-separated, of: {', '.join(VARIANTS)} (default: all)",
    )
    parser.add_argument(
        "--partitions", type=positive, default=1, help="dev server partitions per task queue"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the order within rounds")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--log-dir", type=Path, help="keep worker and server logs here")
    parser.add_argument(
        "--profile", action="store_true", help="then profile one run per variant with py-spy"
    )
    parser.add_argument(
        "--temporal",
        default=shutil.which("temporal") or str(Path(sys.executable).parent / "temporal"),
        help="the temporal CLI (default: on PATH, else next to this Python)",
    )
    args = parser.parse_args(argv)
    if args.max_rounds < args.rounds:
        parser.error("--max-rounds must be at least --rounds")
    if args.workflows < 10:
        parser.error("--workflows must be at least 10 (for percentiles of every workload)")
    if not Path(args.temporal).is_file():
        parser.error(f"temporal CLI not found: {args.temporal} (use --temporal PATH)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    begin = time.perf_counter()
    try:
        with log_directory(args.log_dir) as log_dir:
            report = asyncio.run(bench(args, log_dir))
    except BenchError as err:
        print(f"bench failed: {err}", file=sys.stderr)
        return 1
    report["runtime_s"] = time.perf_counter() - begin
    print()
    print(table(report))
    if "project+trace" in args.variants:
        print(f"project+trace: {report['otlp_exports']} OTLP exports received")
    print(f"total runtime: {report['runtime_s']:.1f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    # Skip interpreter finalization, which temporalio can crash after a clean shutdown.
    exit_process(main())
