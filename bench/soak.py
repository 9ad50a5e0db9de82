"""Soak the fleet's worker beside the bare SDK: a fixed rate of workflows, for an hour.

    uv run python bench/soak.py [--duration 60m] [--rate 0.35] [--workers fleet,production,bare]
                                [--sample-every 10] [--json PATH] [--heap-probe DIR]

It starts its own Temporal dev server on free 127.0.0.1 ports, with one namespace per worker,
and runs the workers side by side, each on the same load, so their figures come from one
interleaved run on a shared machine:
  fleet       ``fleet worker --all``: every installed queue in one process, the deployed
              entrypoint with its defaults (SQLite state)
  production  the same with the production configuration: payloads encrypted (its client
              encrypts too), every span exported over OTLP (to a sink here), PostgreSQL state
  bare        every queue on a plain ``temporalio`` Worker with the SDK's defaults
              (``bench/bare_fleet.py``): the anchor, what the SDK and the queues' code do alone
Each worker gets a fresh, migrated state, restocked for every order of the run. For
``--duration`` the soak starts ``--rate`` workflows per second on each queue of each worker,
as an outside client would (JSON arguments by workflow type name), each with a deadline:
  orders         OrderWorkflow, confirmed by a signal sent with the start
  notifications  NotifyWorkflow on two channels
  ingest         BatchIngestWorkflow of 20 items in 4 chunk workflows
  agent          AgentWorkflow with the local provider (a calculator tool call)
Every ``--sample-every`` seconds it reads each worker's RSS, threads, open files and CPU time
from /proc. The first third of the run is the warm-up; over the last two thirds it fits a
line to each worker's RSS and thread count and judges the fleet's workers: RSS growth along
that line within 3%, and threads flat (less than one thread gained along theirs). The bare SDK's
figures are printed beside, not judged. It exits 1 if any workflow failed or missed its
deadline, a worker died, or a judged worker missed a target.

``--heap-probe DIR`` has each worker write, every ``--sample-every`` seconds, its C heap
(glibc's, which the SDK core's Rust allocates from too), its Python heap and its live objects
by type to ``DIR/<worker>/`` (``bench/heapprobe``); ``--trace-frames N`` adds tracemalloc
snapshots by allocation site (slow: use a low ``--rate``). ``bench/heapdiff.py`` reads them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from asyncio.subprocess import DEVNULL
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from workerkit import connect, exit_process, parse_duration
from workerkit._encryption import new_key
from workerkit._net import free_port

from bench_error import BenchError
from child_processes import (
    BENCH_DIR,
    base_env,
    log_tail,
    read_cpu_s,
    read_status,
    stop,
    wait_readyz,
)
from dev_server import default_temporal_cli, start_server
from otlp_sink import OtlpSink
from postgres_server import postgres

RSS_GROWTH_TARGET_PCT = 3.0  # over the last two thirds of the run, along the fitted line
THREADS_GAIN_LIMIT = 1.0  # threads gained over the same window, along the fitted line
WARMUP_FRACTION = 1 / 3
READY_TIMEOUT_S = 60.0
ADDRESS = dict(name="Soak", line1="1 Main St", city="Springfield", postal_code="1", country="US")
SKUS = ("sku-widget", "sku-gadget")  # restocked before the run for every order it starts
HEAPPROBE_DIR = BENCH_DIR / "heapprobe"
WORKERS = {
    "fleet": "fleet worker --all, defaults (SQLite)",
    "production": "fleet worker --all, encryption + span export + PostgreSQL",
    "bare": "bare temporalio Workers, SDK defaults",
}
JUDGED = ("fleet", "production")


@dataclass(frozen=True)
class Job:
    """How to start one workflow of a queue: type, task queue, argument, optional signal."""

    workflow: str
    task_queue: str
    arg: Callable[[str, int], dict[str, Any]]
    signal: tuple[str, dict[str, Any]] | None = None


JOBS = {
    "orders": Job(
        "OrderWorkflow",
        "orders-v1",
        lambda key, i: {
            "order_id": key,
            "customer_id": "cust-soak",
            "payment_token": "tok_visa",
            "items": [{"sku": SKUS[i % 2], "quantity": 1, "unit_price_cents": 1250}],
            "shipping_address": ADDRESS,
        },
        signal=("confirm", {"confirmed_by": "soak"}),
    ),
    "notifications": Job(
        "NotifyWorkflow",
        "notifications-v1",
        lambda key, _: {
            "message_id": key,
            "recipient": "user-42",
            "subject": "soak",
            "body": "Still here.",
            "channels": ["email", "push"],
        },
    ),
    "ingest": Job(
        "BatchIngestWorkflow",
        "ingest-v1",
        lambda key, _: {
            "batch_id": key,
            "item_count": 20,
            "chunk_size": 5,
            "max_concurrent_children": 2,
        },
    ),
    "agent": Job(
        "AgentWorkflow",
        "agent-v1",
        lambda key, _: {"task_id": key, "prompt": "What is 12 * (3 + 4) - 5?"},
    ),
}


@dataclass(frozen=True)
class Sample:
    at_s: float
    rss_mib: float
    open_files: int
    threads: int
    cpu_s: float


@dataclass
class Tally:
    started: int = 0
    completed: int = 0
    failed: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)


@dataclass
class Soaked:
    """One worker of the run: its process, the client that loads it, and what it did."""

    name: str
    env: dict[str, str]
    log: Path
    proc: asyncio.subprocess.Process | None = None
    client: Client | None = None
    tallies: dict[str, Tally] = field(default_factory=lambda: {q: Tally() for q in JOBS})
    samples: list[Sample] = field(default_factory=list)


def sample(pid: int, at_s: float) -> Sample:
    status = read_status(pid)  # one read for RSS and threads
    return Sample(
        at_s=at_s,
        rss_mib=status["VmRSS"] / 1024,  # kB
        open_files=len(os.listdir(f"/proc/{pid}/fd")),
        threads=status["Threads"],
        cpu_s=read_cpu_s(pid),
    )


async def one(
    client: Client, job: Job, key: str, i: int, deadline: timedelta, tally: Tally
) -> None:
    tally.started += 1
    try:
        handle = await client.start_workflow(
            job.workflow,
            job.arg(key, i),
            id=key,
            task_queue=job.task_queue,
            execution_timeout=deadline * 2,  # the server ends what the soak gave up on
            start_signal=job.signal[0] if job.signal else None,
            start_signal_args=[job.signal[1]] if job.signal else [],
        )
        await asyncio.wait_for(handle.result(), deadline.total_seconds())
    except TimeoutError:
        tally.stuck.append(key)
    except Exception as err:
        tally.failed.append(f"{key}: {' '.join(str(err).split())[:200]}")
    else:
        tally.completed += 1


async def drive(
    client: Client, queue: str, rate: float, until: float, deadline: timedelta, tally: Tally
) -> None:
    """Start ``rate`` workflows per second of ``queue`` until ``until``, then await them."""
    job, run = JOBS[queue], f"{int(time.time())}"
    running: set[asyncio.Task[None]] = set()
    begin, i = time.monotonic(), 0
    while time.monotonic() < until:
        key = f"soak-{queue}-{run}-{i}"
        task = asyncio.create_task(one(client, job, key, i, deadline, tally))
        running.add(task)
        task.add_done_callback(running.discard)
        i += 1
        await asyncio.sleep(max(0.0, begin + i / rate - time.monotonic()))
    await asyncio.gather(*running)


async def watch(workers: list[Soaked], every: float, begin: float, stop_at: asyncio.Event) -> None:
    while not stop_at.is_set():
        at = time.monotonic() - begin
        for w in workers:
            assert w.proc is not None
            if w.proc.returncode is None:
                w.samples.append(sample(w.proc.pid, at))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_at.wait(), every)


def fitted(points: list[tuple[float, float]]) -> tuple[float, float]:
    """The least-squares line through ``points``: its value at the first and last x."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    first, last = points[0][0], points[-1][0]
    return my + slope * (first - mx), my + slope * (last - mx)


def growth(samples: list[Sample], duration_s: float) -> dict[str, Any]:
    """Each figure over the judged window (after the warm-up), and whether it met its target.

    Both are judged along a least-squares line through the window's samples, so neither end
    rests on one sample (the SDK core's blocking threads come and go by the second).
    """
    window_at = duration_s * WARMUP_FRACTION
    warmup = [s for s in samples if s.at_s < window_at]
    window = [s for s in samples if s.at_s >= window_at]
    if len(warmup) < 2 or len(window) < 3:
        raise BenchError(f"too few samples ({len(samples)}): lower --sample-every")
    start, end = fitted([(s.at_s, s.rss_mib) for s in window])
    rss_pct = 100 * (end - start) / start
    first_threads, last_threads = fitted([(s.at_s, float(s.threads)) for s in window])
    busy = window[-1].cpu_s - window[0].cpu_s
    return {
        "window_s": [window[0].at_s, window[-1].at_s],
        "rss_mib": {
            "first": window[0].rss_mib,
            "last": window[-1].rss_mib,
            "fitted": [start, end],
            "growth_pct": rss_pct,
            "peak": max(s.rss_mib for s in samples),
        },
        "threads": {
            "first": window[0].threads,
            "last": window[-1].threads,
            "fitted_gain": last_threads - first_threads,
            "flat": last_threads - first_threads < THREADS_GAIN_LIMIT,
        },
        "open_files": {"first": window[0].open_files, "last": window[-1].open_files},
        "cpu_share": busy / max(window[-1].at_s - window[0].at_s, 1e-9),  # of one core
        "rss_ok": rss_pct <= RSS_GROWTH_TARGET_PCT,
    }


async def run_tool(env: dict[str, str], *argv: str, what: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdin=DEVNULL, stdout=DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise BenchError(f"{what} failed: {err.decode(errors='replace')[-2000:]}")


async def prepare(w: Soaked, orders: int) -> None:
    """A fresh state for ``w``: the schema migrated, and stock for every order of the run."""
    fleet = (sys.executable, "-m", "workerkit.cli")
    await run_tool(w.env, *fleet, "db", "migrate", what=f"{w.name}: fleet db migrate")
    code = (
        "import sys; from orders.ledger import Ledger; from workerkit import open_database\n"
        "ledger = Ledger(open_database(application_name='soak'))\n"
        "for sku in sys.argv[2:]: ledger.set_stock(sku, int(sys.argv[1]))"
    )
    await run_tool(w.env, sys.executable, "-c", code, str(orders), *SKUS, what="restocking")


async def start_worker(w: Soaked, args: argparse.Namespace) -> None:
    env, heap_dir = dict(w.env), args.heap_probe
    if heap_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(HEAPPROBE_DIR), env.get("PYTHONPATH", "")])
        env["HEAPPROBE_DIR"] = str(heap_dir / w.name)
        env["HEAPPROBE_EVERY"] = str(args.sample_every)
        env["HEAPPROBE_FRAMES"] = str(args.trace_frames)
    if w.name == "bare":
        argv = [sys.executable, str(BENCH_DIR / "bare_fleet.py")]
    else:
        port = free_port()
        env |= {"WORKER_HTTP_HOST": "127.0.0.1", "WORKER_HTTP_PORT": str(port)}
        argv = [sys.executable, "-m", "workerkit.cli", "worker", "--all"]
    with w.log.open("wb") as out:
        w.proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdin=DEVNULL, stdout=out, stderr=out
        )
    timeout = READY_TIMEOUT_S * (5 if args.trace_frames else 1)  # imports traced too
    try:
        if w.name != "bare":
            await wait_readyz(w.proc, port, timeout)
            return
        deadline = time.monotonic() + timeout
        while b"ready" not in w.log.read_bytes().splitlines():
            if w.proc.returncode is not None or time.monotonic() > deadline:
                raise BenchError("no ready line")
            await asyncio.sleep(0.1)
    except BenchError as err:
        raise BenchError(
            f"{w.name}: the worker did not become ready: {err}{log_tail(w.log)}"
        ) from None


async def soak(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    names: list[str] = args.workers
    server, admin = await start_server(
        args.temporal, 1, work / "temporal-server.log", namespaces=names
    )
    address = admin.service_client.config.target_host
    sink = OtlpSink() if "production" in names else None
    workers = []
    try:
        with postgres("production" in names) as pg:
            for name in names:
                env = base_env() | {
                    "TEMPORAL_ADDRESS": address,
                    "TEMPORAL_NAMESPACE": name,
                    "WORKER_STATE_DIR": str(work / name / "state"),
                }
                if name == "production":
                    assert pg is not None and sink is not None
                    env |= {
                        "DATABASE_URL": pg.create_database("soak"),
                        "FLEET_ENCRYPTION_KEYS": new_key("soak"),
                        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
                        "OTEL_SERVICE_NAME": "soak",
                    }
                env |= dict(pair.split("=", 1) for pair in args.env)
                (work / name).mkdir(parents=True, exist_ok=True)
                workers.append(Soaked(name, env, work / name / "worker.log"))
            orders = int(args.rate * args.duration.total_seconds()) + 100
            for w in workers:
                await prepare(w, orders)
                await start_worker(w, args)
                if w.name == "production":  # a fleet client: it encrypts what it sends
                    w.client = await connect(environ=w.env)
                else:  # an outside client, by type name and JSON
                    w.client = await Client.connect(address, namespace=w.name)
            pids = ", ".join(f"{w.name} pid {w.proc.pid}" for w in workers if w.proc)
            print(f"workers ready ({pids}); soaking for {args.duration}", flush=True)
            await load(workers, args)
            for w in workers:
                assert w.proc is not None
                if w.proc.returncode is not None:
                    raise BenchError(
                        f"{w.name}: the worker died with code {w.proc.returncode}{log_tail(w.log)}"
                    )
                code = await stop(w.proc)
                if code != 0:
                    raise BenchError(
                        f"{w.name}: the worker exited with code {code} after SIGTERM"
                        f"{log_tail(w.log)}"
                    )
    finally:
        for w in workers:
            if w.proc is not None and w.proc.returncode is None:
                w.proc.kill()
                await w.proc.wait()
        if sink is not None:
            sink.close()
        await stop(server, grace_s=10)
    return {
        "config": {
            "duration_s": args.duration.total_seconds(),
            "rate_per_queue": args.rate,
            "deadline_s": args.deadline.total_seconds(),
            "sample_every_s": args.sample_every,
            "env": args.env,
            "spans_exports": sink.exports if sink is not None else None,
        },
        "workers": {
            w.name: {
                "queues": {q: asdict(t) for q, t in w.tallies.items()},
                "growth": growth(w.samples, args.duration.total_seconds()),
                "samples": [asdict(s) for s in w.samples],
            }
            for w in workers
        },
    }


async def load(workers: list[Soaked], args: argparse.Namespace) -> None:
    """Drive every queue of every worker for the run, sampling the workers meanwhile."""
    begin = time.monotonic()
    done = asyncio.Event()
    watcher = asyncio.create_task(watch(workers, args.sample_every, begin, done))
    until = begin + args.duration.total_seconds()
    drivers = []
    for w in workers:
        assert w.client is not None
        drivers += [drive(w.client, q, args.rate, until, args.deadline, w.tallies[q]) for q in JOBS]
    await asyncio.gather(*drivers, progress(workers, begin, until))
    done.set()
    await watcher


async def progress(workers: list[Soaked], begin: float, until: float) -> None:
    while time.monotonic() < until:
        await asyncio.sleep(min(60.0, max(until - time.monotonic(), 0.0)))
        parts = []
        for w in workers:
            done = sum(t.completed for t in w.tallies.values())
            bad = sum(len(t.failed) + len(t.stuck) for t in w.tallies.values())
            rss = f"{w.samples[-1].rss_mib:.1f} MiB" if w.samples else "-"
            parts.append(f"{w.name} {done} done, {bad} bad, {rss}")
        print(f"  {time.monotonic() - begin:5.0f} s: " + "; ".join(parts), flush=True)


def report(result: dict[str, Any]) -> tuple[str, bool]:
    lines, ok = [], True
    for name, w in result["workers"].items():
        lines.append(f"{name} ({WORKERS[name]}):")
        for queue, t in w["queues"].items():
            lines.append(
                f"  {queue:<14} started {t['started']:5}  completed {t['completed']:5}  "
                f"failed {len(t['failed']):3}  stuck {len(t['stuck']):3}"
            )
            for problem in t["failed"][:3] + [f"{k}: not done in time" for k in t["stuck"][:3]]:
                lines.append(f"    {problem}")
            ok = ok and not t["failed"] and not t["stuck"] and t["completed"] == t["started"]
    window = next(iter(result["workers"].values()))["growth"]["window_s"]
    lines.append(
        f"memory after the warm-up, {window[0] / 60:.1f} to {window[1] / 60:.1f} min "
        f"(along fitted lines: RSS growth <= {RSS_GROWTH_TARGET_PCT:g}%, threads gained "
        f"< {THREADS_GAIN_LIMIT:g}):"
    )
    lines.append(
        f"  {'worker':<11} {'RSS MiB first -> last':>22} {'fitted growth':>14} {'peak':>7} "
        f"{'threads (gain)':>15} {'files':>9} {'CPU':>6}  verdict"
    )
    for name, w in result["workers"].items():
        g = w["growth"]
        r, t, f = g["rss_mib"], g["threads"], g["open_files"]
        if name in JUDGED:
            passed = g["rss_ok"] and t["flat"]
            ok = ok and passed
            verdict = (
                "PASS"
                if passed
                else "MISS"
                + ("" if g["rss_ok"] else " (RSS)")
                + ("" if t["flat"] else " (threads)")
            )
        else:
            verdict = "(anchor, not judged)"
        lines.append(
            f"  {name:<11} {r['first']:10.1f} -> {r['last']:8.1f} {r['growth_pct']:+13.1f}% "
            f"{r['peak']:7.1f} {t['first']:>4}->{t['last']:<3} ({t['fitted_gain']:+.1f}) "
            f"{f['first']:>4}-{f['last']:<4} {100 * g['cpu_share']:5.1f}%  {verdict}"
        )
    lines.append(f"soak: {'PASS' if ok else 'FAIL'}")
    return "\n".join(lines), ok


def duration(text: str) -> timedelta:
    try:
        value = parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration such as 10m or 90s: {text}") from None
    if value.total_seconds() <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def worker_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKERS]
    if unknown or not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"a comma-separated list of {', '.join(WORKERS)}, each once: {text}"
        )
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=duration, default=timedelta(minutes=60))
    # Per queue and worker: 4.2 workflows/s in all for three workers (with their children,
    # activities and signals), what one dev server serves on 2 cores for an hour; at 1/s it
    # falls behind within 15 minutes and workflows miss their deadline.
    parser.add_argument(
        "--rate", type=float, default=0.35, help="workflows per second per queue and worker"
    )
    parser.add_argument(
        "--workers", type=worker_names, default=list(WORKERS), help="default: all three"
    )
    parser.add_argument(
        "--deadline", type=duration, default=timedelta(seconds=60), help="per workflow"
    )
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable for every worker (repeatable), e.g. WORKER_WORKFLOW_SANDBOX=true",
    )
    parser.add_argument("--json", type=Path, help="also write every figure and sample here")
    parser.add_argument(
        "--heap-probe",
        type=Path,
        metavar="DIR",
        help="each worker writes its C heap, Python heap and objects by type to DIR/<worker>/ "
        "every --sample-every (read them with bench/heapdiff.py)",
    )
    parser.add_argument(
        "--trace-frames",
        type=int,
        default=0,
        metavar="N",
        help="with --heap-probe, also tracemalloc snapshots (N frames per allocation; slow)",
    )
    parser.add_argument("--log-dir", type=Path, help="keep the workers' and server's logs here")
    parser.add_argument(
        "--temporal",
        default=default_temporal_cli(),
        help="the temporal CLI (default: on PATH, else next to this Python)",
    )
    args = parser.parse_args(argv)
    if any("=" not in pair for pair in args.env):
        parser.error("--env takes NAME=VALUE")
    if not 0 < args.rate <= 50:
        parser.error("--rate must be above 0 and at most 50 per queue")
    if args.heap_probe is not None:
        args.heap_probe = args.heap_probe.resolve()
    elif args.trace_frames:
        parser.error("--trace-frames needs --heap-probe")
    if not Path(args.temporal).is_file():
        parser.error(f"temporal CLI not found: {args.temporal} (use --temporal PATH)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.log_dir is not None:
            args.log_dir.mkdir(parents=True, exist_ok=True)
            result = asyncio.run(soak(args, args.log_dir.resolve()))
        else:
            with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
                result = asyncio.run(soak(args, Path(tmp)))
    except BenchError as err:
        print(f"soak failed: {err}", file=sys.stderr)
        return 1
    text, ok = report(result)
    print(text)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    exit_process(main())
