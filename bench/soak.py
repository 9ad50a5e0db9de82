"""Soak the fleet's worker: a fixed rate of workflows on every queue, for a long time.

    uv run python bench/soak.py [--duration 10m] [--rate 1] [--sample-every 5s] [--json PATH]

It starts its own Temporal dev server on free 127.0.0.1 ports, migrates a fresh SQLite
state directory, and runs ``fleet worker --all`` (every installed queue in one process, the
deployed entrypoint with its defaults). Then, for ``--duration``, it starts ``--rate``
workflows per second on each queue, as an outside client would (JSON arguments by workflow
type name, no ``fleet`` in between), each with a deadline of ``--deadline``:
  orders         OrderWorkflow, confirmed by a signal sent with the start
  notifications  NotifyWorkflow on two channels
  ingest         BatchIngestWorkflow of 20 items in 4 chunk workflows
  agent          AgentWorkflow with the local provider (a calculator tool call)
Every ``--sample-every`` it reads the worker's RSS, open files, threads and CPU time from
/proc. At the end it prints each figure at minute 2 (or a fifth of the run, if shorter) and
at the end, with its growth, and the workflows started, completed, failed and stuck. It
exits 1 if any workflow failed or did not complete within its deadline, or the worker
died; RSS growth above 5% is reported as a MISS of the target, not a failure.
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
from workerkit import exit_process, parse_duration

from run import (
    BenchError,
    base_env,
    free_port,
    log_tail,
    read_cpu_s,
    read_status,
    start_server,
    stop,
    wait_readyz,
)

RSS_GROWTH_TARGET_PCT = 5.0
BASELINE_S = 120.0  # growth is measured from minute 2: start-up and warm caches are done
READY_TIMEOUT_S = 60.0
ADDRESS = dict(name="Soak", line1="1 Main St", city="Springfield", postal_code="1", country="US")
SKUS = ("sku-widget", "sku-gadget")  # 1000 of each in the demo stock: 2000 orders at most


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


async def watch(pid: int, every: float, begin: float, stop_at: asyncio.Event) -> list[Sample]:
    samples: list[Sample] = []
    while not stop_at.is_set():
        samples.append(sample(pid, time.monotonic() - begin))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_at.wait(), every)
    return samples


def growth(samples: list[Sample], duration_s: float) -> dict[str, Any]:
    """Each figure at the baseline and at the end, and its growth in percent."""
    baseline_at = min(BASELINE_S, duration_s / 5)
    base = next(s for s in samples if s.at_s >= baseline_at)
    end = samples[-1]
    figures: dict[str, Any] = {"baseline_at_s": base.at_s, "end_at_s": end.at_s}
    for name in ("rss_mib", "open_files", "threads"):
        a, b = getattr(base, name), getattr(end, name)
        figures[name] = {"baseline": a, "end": b, "growth_pct": 100 * (b - a) / a}
    busy = end.cpu_s - base.cpu_s
    figures["cpu_share"] = busy / max(end.at_s - base.at_s, 1e-9)  # of one core
    return figures


async def soak(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    server, client = await start_server(args.temporal, 1, work / "temporal-server.log")
    env = base_env() | {
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "WORKER_STATE_DIR": str(work / "state"),
    }
    env |= dict(pair.split("=", 1) for pair in args.env)
    fleet = [sys.executable, "-m", "workerkit.cli"]
    log = work / "worker.log"
    proc = None
    try:
        migrate = await asyncio.create_subprocess_exec(
            *fleet, "db", "migrate", env=env, stdin=DEVNULL, stdout=DEVNULL
        )
        if await migrate.wait() != 0:
            raise BenchError("fleet db migrate failed")
        http_port = free_port()
        env |= {"WORKER_HTTP_HOST": "127.0.0.1", "WORKER_HTTP_PORT": str(http_port)}
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                *fleet, "worker", "--all", env=env, stdin=DEVNULL, stdout=out, stderr=out
            )
        try:
            await wait_readyz(proc, http_port, READY_TIMEOUT_S)
        except BenchError as err:
            raise BenchError(f"the worker did not become ready: {err}{log_tail(log)}") from None
        print(f"worker ready (pid {proc.pid}); soaking for {args.duration}", flush=True)
        begin = time.monotonic()
        done = asyncio.Event()
        watcher = asyncio.create_task(watch(proc.pid, args.sample_every, begin, done))
        tallies = {queue: Tally() for queue in JOBS}
        until = begin + args.duration.total_seconds()
        await asyncio.gather(
            *(
                drive(client, queue, args.rate, until, args.deadline, tallies[queue])
                for queue in JOBS
            ),
            progress(tallies, begin, until),
        )
        done.set()
        samples = await watcher
        if proc.returncode is not None:
            raise BenchError(f"the worker died with code {proc.returncode}{log_tail(log)}")
        code = await stop(proc)
        if code != 0:
            raise BenchError(f"the worker exited with code {code} after SIGTERM{log_tail(log)}")
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        await stop(server, grace_s=10)
    return {
        "config": {
            "duration_s": args.duration.total_seconds(),
            "rate_per_queue": args.rate,
            "deadline_s": args.deadline.total_seconds(),
            "sample_every_s": args.sample_every,
            "env": args.env,
        },
        "queues": {queue: asdict(t) for queue, t in tallies.items()},
        "growth": growth(samples, args.duration.total_seconds()),
        "samples": [asdict(s) for s in samples],
    }


async def progress(tallies: dict[str, Tally], begin: float, until: float) -> None:
    while time.monotonic() < until:
        await asyncio.sleep(min(60.0, max(until - time.monotonic(), 0.0)))
        done = sum(t.completed for t in tallies.values())
        bad = sum(len(t.failed) + len(t.stuck) for t in tallies.values())
        print(f"  {time.monotonic() - begin:5.0f} s: {done} completed, {bad} failed or stuck")


def report(result: dict[str, Any]) -> tuple[str, bool]:
    lines, ok = [], True
    for queue, t in result["queues"].items():
        lines.append(
            f"{queue:<14} started {t['started']:5}  completed {t['completed']:5}  "
            f"failed {len(t['failed']):3}  stuck {len(t['stuck']):3}"
        )
        for problem in t["failed"][:3] + [f"{k}: not done in time" for k in t["stuck"][:3]]:
            lines.append(f"  {problem}")
        ok = ok and not t["failed"] and not t["stuck"] and t["completed"] == t["started"]
    g = result["growth"]
    lines.append(f"worker figures, from {g['baseline_at_s']:.0f} s to {g['end_at_s']:.0f} s:")
    for name, label in (
        ("rss_mib", "RSS MiB"),
        ("open_files", "open files"),
        ("threads", "threads"),
    ):
        f = g[name]
        target = ""
        if name == "rss_mib":
            passed = f["growth_pct"] < RSS_GROWTH_TARGET_PCT
            target = f"  target < {RSS_GROWTH_TARGET_PCT:g}%: {'PASS' if passed else 'MISS'}"
        lines.append(
            f"  {label:<11} {f['baseline']:8.1f} -> {f['end']:8.1f}  "
            f"({f['growth_pct']:+.1f}%){target}"
        )
    lines.append(f"  CPU         {100 * g['cpu_share']:.1f}% of one core")
    lines.append(f"soak: {'PASS' if ok else 'FAIL'} (every workflow completed in time: {ok})")
    return "\n".join(lines), ok


def duration(text: str) -> timedelta:
    try:
        value = parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration such as 10m or 90s: {text}") from None
    if value.total_seconds() <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=duration, default=timedelta(minutes=10))
    parser.add_argument("--rate", type=float, default=1.0, help="workflows per second per queue")
    parser.add_argument(
        "--deadline", type=duration, default=timedelta(seconds=60), help="per workflow"
    )
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable for the worker (repeatable), e.g. WORKER_WORKFLOW_SANDBOX=false",
    )
    parser.add_argument("--json", type=Path, help="also write every figure and sample here")
    parser.add_argument("--log-dir", type=Path, help="keep the worker's and server's logs here")
    parser.add_argument("--temporal", default=None, help="the temporal CLI (default: as bench)")
    args = parser.parse_args(argv)
    if any("=" not in pair for pair in args.env):
        parser.error("--env takes NAME=VALUE")
    if not 0 < args.rate <= 50:
        parser.error("--rate must be above 0 and at most 50 per queue")
    orders = args.rate * args.duration.total_seconds()
    if orders > 2000:
        parser.error(
            f"{orders:.0f} orders exceed the demo stock (2000): lower --rate or --duration"
        )
    if args.temporal is None:
        from run import parse_args as bench_args

        args.temporal = bench_args([]).temporal
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.log_dir is not None:
            args.log_dir.mkdir(parents=True, exist_ok=True)
            result = asyncio.run(soak(args, args.log_dir))
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
