"""Benchmark the project's worker against a bare SDK worker: variants interleaved in one run.

    uv run python bench/run.py [--rounds 8] [--max-rounds 40] [--workflows 200] [--json PATH]
    (also --variants, --spread, --concurrency, --partitions, --profile, --log-dir, --image,
    --baseline; --help)

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
  bare+prodlibs  the same, having also imported what the production configuration loads
                 (cryptography's AES-GCM, the OTLP/HTTP exporter, requests): its floor.
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
  production     the project in the production configuration: payloads encrypted
                 (``FLEET_ENCRYPTION_KEYS``, ``FLEET_ENCRYPTION_MODE=encrypt``; the bench's
                 client encrypts too) and every span exported, as ``project+trace``.
  bare-saga-pg   ``bare-saga`` with the ledger on PostgreSQL (a fresh database per run, on a
                 server the bench starts: the test suite's, Debian's binaries).
  production-saga  ``production`` on the saga, its ledger on PostgreSQL as ``bare-saga-pg``.
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
Image: the orders worker image's size over its base image (``--image``, built by
``make images``), read from the Docker engine when one answers; else it says so.
A comparison divides CPU per workflow of its two back-to-back runs, round by round;
its figure is the median of those ratios and its spread the half-width of the median's
distribution-free 95% confidence interval (order statistics; min to max below 6 rounds),
as a percentage of the median. Targets are checked on those medians, on the medians of
start-to-ready of ``project`` against ``bare``, of RSS of ``project`` and ``production``
against ``bare`` (and of ``production-saga`` against ``bare-saga-pg``), and on the image.
A MISS still exits 0 (the figures are the output); an error (a failed workflow, a worker
that does not start or stop cleanly) exits 1. temporalio may crash at interpreter exit after
a clean shutdown, so a signal exit of the bare worker is accepted; the project worker must
exit 0.

``--baseline DIR`` adds, for each of ``--baseline-variants`` in the run, the same variant on
the code of the checkout at DIR (e.g. ``git worktree add DIR HEAD~1``), named
``<variant>@before``, with its own comparisons: a change's before and after in one run.

``--profile`` then samples one more run of each variant with py-spy (``--gil``, so only
the thread holding the interpreter counts) and prints the functions on top of the stack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from asyncio.subprocess import DEVNULL, PIPE
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client
from workerkit import data_converter, exit_process
from workerkit._encryption import KEYS_VARIABLE, MODE_VARIABLE, new_key
from workerkit._net import free_port

from bench_error import BenchError
from bench_report import describe, table
from bench_stats import settled, summarize
from bench_variants import COMPARISONS, TUNING, VARIANTS, Variant, Worker, add_baseline
from child_processes import (
    BENCH_DIR,
    READY_TIMEOUT_S,
    base_env,
    log_tail,
    read_cpu_s,
    read_rss_mib,
    stop,
    wait_readyz,
)
from dev_server import default_temporal_cli, start_server
from gil_profile import hottest, start_profiler
from image_size import DEFAULT_IMAGE, image_figure
from otlp_sink import OtlpSink
from postgres_server import postgres
from project_worker import queues
from run_result import RunResult
from workflow_driver import drive, prepare_saga_state

SCRIPTS: dict[Worker, Path] = {
    "project": BENCH_DIR / "project_worker.py",
    "bare": BENCH_DIR / "bare_worker.py",
}
READY_LINE = b"ready"  # what bare_worker.py prints
# OTel's batch span processor sends a batch once 512 spans wait, and what is left every 5 s
# (OTEL_BSP_SCHEDULE_DELAY): the trace variant's CPU is read after that last export.
TRACE_EXPORT_DELAY_S = 5.0
PROFILE_ROUND = 99  # the index of the profiled runs, which no figure includes


async def wait_ready(worker: Worker, proc: asyncio.subprocess.Process, http_port: int) -> None:
    """Wait until a worker serves: the bare one's ``ready`` line, the project's ``/readyz``."""
    if worker == "bare":
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT_S)
        if line.strip() != READY_LINE:
            raise BenchError(f"exited before ready, with code {await proc.wait()}")
        return
    await wait_readyz(proc, http_port)


@dataclass
class Bench:
    """What every run shares: the server's clients (one encrypts, with the keyring of the
    encrypting variants), the environment, logs, the OTLP sink, PostgreSQL (or None)."""

    client: Client
    encrypting_client: Client
    keys: str
    env: dict[str, str]
    log_dir: Path
    workflows: int
    concurrency: int
    sink: OtlpSink
    pg: Any

    def env_for(self, variant: Variant) -> dict[str, str]:
        env = self.env | dict(variant.env)
        if variant.worker == "project":
            env |= {"WORKER_LOG_LEVEL": "info", "WORKER_LOG_FORMAT": "json"}
        if variant.encrypt:
            env |= {KEYS_VARIABLE: self.keys, MODE_VARIABLE: "encrypt"}
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
            # A fresh ledger for every run: a variant in two comparisons runs twice a round.
            state = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.log_dir)) / "state"
            if variant.postgres:
                env["DATABASE_URL"] = self.pg.create_database(name.lower())
            else:
                env["WORKER_STATE_DIR"] = str(state)
            prepare_saga_state(state, name, env.get("DATABASE_URL"))
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
            client = self.encrypting_client if variant.encrypt else self.client
            await drive(client, variant.workload, task_queues, warm, warm, id_prefix="warm-")
            spy = None if profile is None else await start_profiler(proc.pid, profile)
            cpu_before = read_cpu_s(proc.pid)
            throughput, latencies = await drive(
                client, variant.workload, task_queues, count, self.concurrency
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


async def bench(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    """Start the server, run the warm-up and the rounds (and profiles); return the report."""
    variants = [VARIANTS[name] for name in args.variants]
    with postgres(any(v.postgres for v in variants)) as pg:
        return await bench_on(args, log_dir, variants, pg)


async def bench_on(
    args: argparse.Namespace, log_dir: Path, variants: list[Variant], pg: Any
) -> dict[str, Any]:
    """:func:`bench` once PostgreSQL (``pg``, or None) is up."""
    sink = OtlpSink()
    server_log = log_dir / "temporal-server.log"
    server, client = await start_server(args.temporal, args.partitions, server_log)
    env = base_env(log_dir / "pycache") | TUNING
    env["TEMPORAL_ADDRESS"] = client.service_client.config.target_host
    keys = new_key("bench")
    encrypting = await Client.connect(
        env["TEMPORAL_ADDRESS"], data_converter=data_converter({KEYS_VARIABLE: keys})
    )
    runner = Bench(
        client, encrypting, keys, env, log_dir, args.workflows, args.concurrency, sink, pg
    )
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
    image = None if args.no_image else image_figure(args.image, args.base_image)
    return summarize(args, variants, runs, sink.exports, image)


@contextmanager
def log_directory(path: Path | None) -> Iterator[Path]:
    """``path`` if given (created), else a temporary directory removed afterwards."""
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
        "--image", default=DEFAULT_IMAGE, help="the worker image whose size over its base is judged"
    )
    parser.add_argument(
        "--base-image", help="its base image (default: PYTHON_IMAGE, the official or the stand-in)"
    )
    parser.add_argument("--no-image", action="store_true", help="leave the image size out")
    parser.add_argument(
        "--baseline", type=Path, help="also run --baseline-variants on this checkout's code"
    )
    parser.add_argument(
        "--baseline-variants",
        type=variant_names,
        default=["project", "production", "production-saga"],
        help="the variants --baseline runs again (default: project,production,production-saga)",
    )
    parser.add_argument(
        "--temporal",
        default=default_temporal_cli(),
        help="the temporal CLI (default: on PATH, else next to this Python)",
    )
    args = parser.parse_args(argv)
    if args.max_rounds < args.rounds:
        parser.error("--max-rounds must be at least --rounds")
    if args.workflows < 10:
        parser.error("--workflows must be at least 10 (for percentiles of every workload)")
    if not Path(args.temporal).is_file():
        parser.error(f"temporal CLI not found: {args.temporal} (use --temporal PATH)")
    if args.baseline is not None:
        if not (args.baseline / "shared" / "src" / "workerkit").is_dir():
            parser.error(f"--baseline {args.baseline}: not a checkout of this repository")
        chosen = [v for v in args.baseline_variants if v in args.variants]
        args.variants += add_baseline(args.baseline.resolve(), chosen)
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
    traced = [v for v in args.variants if VARIANTS[v].trace_export]
    if traced:
        print(f"{', '.join(traced)}: {report['otlp_exports']} OTLP exports received")
    print(f"total runtime: {report['runtime_s']:.1f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    # Skip interpreter finalization, which temporalio can crash after a clean shutdown.
    exit_process(main())
