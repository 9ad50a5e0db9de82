"""Measure what one workflow of each queue costs, for ``fleet size``: CPU, memory, server calls.

    uv run --frozen python bench/capacity.py [--queues orders,agent] [--workflows 100]
                                             [--concurrency 10] [--write] [--json PATH]

``make capacity`` runs it with ``--write``. It starts its own
Temporal dev server on free 127.0.0.1 ports (the server's defaults: 4 partitions per task
queue), with one namespace per queue and its ``/metrics`` on a free port. Then, one queue at
a time, it runs the queue's worker as deployed, ``fleet worker QUEUE`` (its defaults: workflows
unsandboxed, JSON logs; its state in SQLite, ``fleet db migrate`` run first, as ``make dev``
does, so no PostgreSQL is needed), and starts the queue's sample workflows, the ones
``make soak`` runs (``bench/soak.py``, ``JOBS``):

  orders         OrderWorkflow of one item, confirmed by a signal sent with the start
  notifications  NotifyWorkflow on two channels (email, push)
  ingest         BatchIngestWorkflow of 20 items in 4 chunk child workflows, 2 at a time
  agent          AgentWorkflow with the local provider (a calculator tool call: two model calls)

For each queue: a few warm-up workflows, left out (the worker's first tasks, lazy imports),
then ``--workflows`` at most ``--concurrency`` in flight. Per queue it reports:

  cpu_s_per_workflow     the worker process's CPU time (user + system, /proc) over the measured
                         workflows, divided by their count
  rss_mib_rest           VmRSS once ready and warmed up, idle
  rss_mib_load           the highest VmRSS sampled (every 0.2 s) under the load
  frontend_requests      the frontend's ``service_requests`` in the queue's namespace over the
                         run, by operation, per workflow: what counts against the namespace's
                         rate limit. ``PollWorkflowExecutionHistory`` (the bench waiting for each
                         result, on every service) and the calls a worker makes by the clock
                         (heartbeats to the worker list, namespace lookups) are listed apart.
  matching_requests,     the same for the matching and history services (per host limits)
  history_requests
  *_persistence          the database calls history and matching make for the namespace
                         (``persistence_requests``; a shard's own task processing is not counted)
  workflow_tasks, ...    from the histories of the measured workflows (their child workflows
                         included): workflow and activity tasks, child workflows, events, and
                         the activity time (started to completed) a workflow holds slots for

``--write`` stores each queue's figures in its package, ``services/<queue>/src/<queue>/
capacity.json`` (a generated file: its ``generated_by`` says how to make it again), where
``fleet size`` reads them in an image that has only that queue installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import sys
import tempfile
import time
import urllib.request
from asyncio.subprocess import DEVNULL
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from workerkit import exit_process
from workerkit._net import free_ports
from workerkit._registry import discover_queues

from bench_error import BenchError
from child_processes import base_env, log_tail, read_cpu_s, read_status, stop, wait_readyz
from dev_server import SERVER_START_TIMEOUT_S, default_temporal_cli
from soak import JOBS, SKUS, run_tool

REPO = Path(__file__).resolve().parent.parent
COMMAND = "make capacity"
GENERATED_BY = "bench/capacity.py (make capacity): measured, do not edit; run it again to refresh"
WARMUP = 3
RSS_SAMPLE_S = 0.2
WORKFLOW_TIMEOUT = timedelta(minutes=2)
# Calls a worker makes by the clock, not per workflow; and the bench's own waits for results.
CLOCK_OPERATIONS = frozenset(
    {"RecordWorkerHeartbeat", "DescribeNamespace", "GetSystemInfo", "ShutdownWorker"}
)
# The bench waiting for each result (a long poll on the history: the server names it apart).
RESULT_WAIT = frozenset({"GetWorkflowExecutionHistory", "PollWorkflowExecutionHistory"})
# The server publishes its counters about once a second: read them after a quiet spell.
METRICS_SETTLE_S = 3.0
_SAMPLE = re.compile(r"^(?P<name>\w+)\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$")
COUNTERS = ("service_requests", "persistence_requests")


def _labels(text: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', text))


def read_requests(metrics_url: str, namespace: str) -> dict[tuple[str, str], float]:
    """``service_requests`` of ``namespace`` by (service, operation), from the server, and its
    ``persistence_requests`` by (``persistence:<service>``, operation)."""
    with urllib.request.urlopen(metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    counts: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or match["name"] not in COUNTERS:
            continue
        labels = _labels(match["labels"])
        if labels.get("namespace") != namespace:
            continue
        service = labels.get("service_name", "")
        if match["name"] == "persistence_requests":
            service = f"persistence:{service}"
        key = (service, labels.get("operation", ""))
        counts[key] = counts.get(key, 0.0) + float(match["value"])
    return counts


@dataclass
class HistoryTally:
    workflows: int = 0
    workflow_tasks: int = 0
    activity_tasks: int = 0
    child_workflows: int = 0
    events: int = 0
    activity_s: float = 0.0


async def tally_history(
    client: Client, handle: WorkflowHandle[Any, Any], into: HistoryTally
) -> None:
    """Count ``handle``'s tasks and events, and those of its child workflows."""
    into.workflows += 1
    started: dict[int, datetime] = {}
    children: list[str] = []
    async for event in handle.fetch_history_events():
        into.events += 1
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            into.workflow_tasks += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            into.activity_tasks += 1
            started[event.event_id] = event.event_time.ToDatetime()
        elif kind in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        ):
            attrs = (
                event.activity_task_completed_event_attributes
                if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
                else event.activity_task_failed_event_attributes
                if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
                else event.activity_task_timed_out_event_attributes
            )
            begin = started.get(attrs.started_event_id)
            if begin is not None:
                into.activity_s += (event.event_time.ToDatetime() - begin).total_seconds()
        elif kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            into.child_workflows += 1
            children.append(
                event.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
            )
    for child in children:
        await tally_history(client, client.get_workflow_handle(child), into)


@dataclass
class Measured:
    queue: str
    figures: dict[str, Any] = field(default_factory=dict)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"


async def start_server(
    temporal: str, log: Path, namespaces: list[str]
) -> tuple[asyncio.subprocess.Process, str, str]:
    """A dev server with its defaults, its metrics on a free port: (process, address, url)."""
    port, http_port, metrics_port = free_ports(3)
    argv = ["server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port)]
    argv += ["--http-port", str(http_port), "--metrics-port", str(metrics_port)]
    argv += ["--log-level", "error"]
    for namespace in namespaces:
        argv += ["--namespace", namespace]
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            temporal, *argv, stdin=DEVNULL, stdout=out, stderr=out, env=base_env()
        )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        try:
            await Client.connect(address)
            return proc, address, f"http://127.0.0.1:{metrics_port}/metrics"
        except RuntimeError as err:
            if proc.returncode is not None or time.monotonic() > deadline:
                await stop(proc)
                raise BenchError(f"dev server did not start: {err}{log_tail(log)}") from err
            await asyncio.sleep(0.2)


async def run_one(
    client: Client, queue: str, key: str, i: int
) -> tuple[WorkflowHandle[Any, Any], float]:
    job = JOBS[queue]
    begin = time.perf_counter()
    handle = await client.start_workflow(
        job.workflow,
        job.arg(key, i),
        id=key,
        task_queue=job.task_queue,
        execution_timeout=WORKFLOW_TIMEOUT,
        start_signal=job.signal[0] if job.signal else None,
        start_signal_args=[job.signal[1]] if job.signal else [],
    )
    await handle.result()
    return handle, time.perf_counter() - begin


def per_workflow(
    before: dict[tuple[str, str], float], after: dict[tuple[str, str], float], service: str, n: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Requests of ``service`` over the run: (per workflow by operation, counted apart)."""
    per: dict[str, float] = {}
    apart: dict[str, float] = {}
    for (svc, op), value in sorted(after.items()):
        if svc != service:
            continue
        delta = value - before.get((svc, op), 0.0)
        if delta <= 0:
            continue
        if op in CLOCK_OPERATIONS or op in RESULT_WAIT:
            apart[op] = delta
        else:
            per[op] = round(delta / n, 3)
    return per, apart


async def measure(
    queue: str, args: argparse.Namespace, address: str, metrics_url: str, work: Path
) -> Measured:
    namespace = f"capacity{queue}"  # no "-": the metrics label would read "_"
    state = work / queue
    state.mkdir()
    env = base_env(work / "pycache") | {
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_NAMESPACE": namespace,
        "WORKER_STATE_DIR": str(state),
        "WORKER_LOG_FORMAT": "json",
        "WORKER_HTTP_HOST": "127.0.0.1",
    }
    fleet = (sys.executable, "-m", "workerkit.cli")
    await run_tool(env, *fleet, "db", "migrate", queue, what=f"{queue}: fleet db migrate")
    if queue == "orders":
        code = (
            "import sys; from orders.ledger import Ledger; from workerkit import open_database\n"
            "ledger = Ledger(open_database(application_name='capacity'))\n"
            "for sku in sys.argv[2:]: ledger.set_stock(sku, int(sys.argv[1]))"
        )
        stock = str(args.workflows + WARMUP)
        await run_tool(env, sys.executable, "-c", code, stock, *SKUS, what="restocking")
    (port,) = free_ports(1)
    log = work / f"{queue}-worker.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *fleet,
            "worker",
            queue,
            env=env | {"WORKER_HTTP_PORT": str(port)},
            stdin=DEVNULL,
            stdout=out,
            stderr=out,
        )
    try:
        try:
            await wait_readyz(proc, port)
        except BenchError as err:
            raise BenchError(f"{queue}: worker not ready: {err}{log_tail(log)}") from None
        client = await Client.connect(address, namespace=namespace)
        run = f"{int(time.time())}"
        for i in range(WARMUP):
            await run_one(client, queue, f"cap-{queue}-{run}-warm{i}", i)
        await asyncio.sleep(METRICS_SETTLE_S)
        rss_rest = read_status(proc.pid)["VmRSS"] / 1024
        before = await asyncio.to_thread(read_requests, metrics_url, namespace)
        cpu0 = read_cpu_s(proc.pid)
        peak = [rss_rest]
        done = asyncio.Event()

        async def sample() -> None:
            while not done.is_set():
                peak.append(read_status(proc.pid)["VmRSS"] / 1024)
                await asyncio.sleep(RSS_SAMPLE_S)

        sampler = asyncio.create_task(sample())
        gate = asyncio.Semaphore(args.concurrency)

        async def one(i: int) -> tuple[WorkflowHandle[Any, Any], float]:
            async with gate:
                return await run_one(client, queue, f"cap-{queue}-{run}-{i}", i)

        begin = time.perf_counter()
        try:
            results = await asyncio.gather(*(one(i) for i in range(args.workflows)))
        except Exception as err:
            raise BenchError(f"{queue}: a workflow failed: {err}{log_tail(log)}") from err
        wall = time.perf_counter() - begin
        cpu = read_cpu_s(proc.pid) - cpu0
        done.set()
        await sampler
        await asyncio.sleep(METRICS_SETTLE_S)
        after = await asyncio.to_thread(read_requests, metrics_url, namespace)
        n = args.workflows
        tally = HistoryTally()
        for handle, _ in results:
            await tally_history(client, handle, tally)
        latencies = sorted(latency for _, latency in results)
        frontend, apart = per_workflow(before, after, "frontend", n)
        matching, _ = per_workflow(before, after, "matching", n)
        history, _ = per_workflow(before, after, "history", n)
        # The database calls made for the namespace (a shard's own task queues are not).
        history_db, _ = per_workflow(before, after, "persistence:history", n)
        matching_db, _ = per_workflow(before, after, "persistence:matching", n)
        figures = {
            "workload": JOBS[queue].workflow,
            "workflows": n,
            "concurrency": args.concurrency,
            "cpu_s_per_workflow": round(cpu / n, 5),
            "rss_mib_rest": round(rss_rest, 1),
            "rss_mib_load": round(max(peak), 1),
            "throughput_per_s": round(n / wall, 2),
            "latency_p50_s": round(latencies[len(latencies) // 2], 3),
            "frontend_requests_per_workflow": round(sum(frontend.values()), 2),
            # Activities not dispatched eagerly (with the workflow task's completion) come
            # through a poll: fleet size plans as if every one did.
            "activity_polls_per_workflow": frontend.get("PollActivityTaskQueue", 0.0),
            "frontend_requests": frontend,
            "frontend_requests_apart": {op: int(v) for op, v in apart.items()},
            "matching_requests_per_workflow": round(sum(matching.values()), 2),
            "matching_requests": matching,
            "history_requests_per_workflow": round(sum(history.values()), 2),
            "history_requests": history,
            "history_persistence_per_workflow": round(sum(history_db.values()), 2),
            "matching_persistence_per_workflow": round(sum(matching_db.values()), 2),
            "workflow_executions_per_workflow": round(tally.workflows / n, 3),
            "workflow_tasks_per_workflow": round(tally.workflow_tasks / n, 3),
            "activity_tasks_per_workflow": round(tally.activity_tasks / n, 3),
            "child_workflows_per_workflow": round(tally.child_workflows / n, 3),
            "history_events_per_workflow": round(tally.events / n, 2),
            "activity_slot_s_per_workflow": round(tally.activity_s / n, 4),
        }
        return Measured(queue, figures)
    finally:
        await stop(proc)


def print_table(measured: list[Measured]) -> None:
    head = (
        f"{'queue':<14} {'CPU ms/wf':>9} {'RSS rest':>9} {'RSS load':>9} {'wf/s':>6} "
        f"{'frontend':>9} {'matching':>9} {'history':>8} {'wf tasks':>8} {'act tasks':>9} "
        f"{'act s':>6}"
    )
    print(head)
    for m in measured:
        f = m.figures
        print(
            f"{m.queue:<14} {1000 * f['cpu_s_per_workflow']:>9.2f} {f['rss_mib_rest']:>8.1f}M "
            f"{f['rss_mib_load']:>8.1f}M {f['throughput_per_s']:>6.1f} "
            f"{f['frontend_requests_per_workflow']:>9.2f} "
            f"{f['matching_requests_per_workflow']:>9.2f} "
            f"{f['history_requests_per_workflow']:>8.2f} {f['workflow_tasks_per_workflow']:>8.2f} "
            f"{f['activity_tasks_per_workflow']:>9.2f} {f['activity_slot_s_per_workflow']:>6.3f}"
        )
    print("(per workflow; requests: the server's service_requests in the queue's namespace)")


def write_figures(m: Measured, meta: dict[str, Any]) -> Path:
    path = REPO / "services" / m.queue / "src" / m.queue / "capacity.json"
    document = {"generated_by": GENERATED_BY, "queue": m.queue, **meta, **m.figures}
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


async def main_async(args: argparse.Namespace) -> int:
    installed = discover_queues()
    queues = args.queues or [q for q in JOBS if q in installed]
    unknown = [q for q in queues if q not in JOBS or q not in installed]
    if unknown:
        raise BenchError(
            f"no sample workload or not installed: {', '.join(unknown)} "
            f"(samples: {', '.join(JOBS)}; add one to JOBS in bench/soak.py)"
        )
    with tempfile.TemporaryDirectory(prefix="capacity-") as tmp:
        work = Path(tmp)
        namespaces = [f"capacity{q}" for q in queues]
        server, address, metrics_url = await start_server(
            args.temporal, work / "temporal-server.log", namespaces
        )
        try:
            measured = []
            for queue in queues:
                print(f"measuring {queue} ...", file=sys.stderr, flush=True)
                measured.append(await measure(queue, args, address, metrics_url, work))
        finally:
            await stop(server)
    print_table(measured)
    cli = await asyncio.create_subprocess_exec(
        args.temporal, "--version", stdout=asyncio.subprocess.PIPE, stderr=DEVNULL
    )
    out, _ = await cli.communicate()
    meta = {
        "measured_on": datetime.now(UTC).date().isoformat(),
        "machine": machine(),
        "command": COMMAND,
        "server": out.decode().strip() or "temporal dev server",
        "temporalio": version("temporalio"),
        "python": platform.python_version(),
        "state": "SQLite (WORKER_STATE_DIR), as make dev",
    }
    if args.json:
        args.json.write_text(
            json.dumps({**meta, "queues": {m.queue: m.figures for m in measured}}, indent=2)
        )
    if args.write:
        for m in measured:
            print(f"wrote {write_figures(m, meta).relative_to(REPO)}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queues", type=lambda s: [q for q in s.split(",") if q], default=None)
    parser.add_argument("--workflows", type=int, default=100, help="measured workflows per queue")
    parser.add_argument("--concurrency", type=int, default=10, help="workflows in flight")
    parser.add_argument("--write", action="store_true", help="store each queue's capacity.json")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--temporal", default=default_temporal_cli(), help="the temporal CLI")
    args = parser.parse_args()
    if args.workflows < 1 or args.concurrency < 1:
        parser.error("--workflows and --concurrency must be at least 1")
    try:
        exit_process(asyncio.run(main_async(args)))
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        exit_process(1)


if __name__ == "__main__":
    main()
