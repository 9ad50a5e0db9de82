"""Benchmark the project's worker against a bare SDK worker, interleaved in one run.

    uv run python bench/run.py [--rounds 3] [--workflows 300] [--concurrency 50] [--json PATH]
    (also --partitions, --log-dir, --no-trace-export, --temporal; see --help)

The bench starts its own Temporal dev server on free 127.0.0.1 ports, then runs one
warm-up round per side (discarded) and ``--rounds`` measured rounds per side, alternating
project, bare, project, bare... Each round starts a fresh worker subprocess on a fresh task
queue, runs ``--workflows`` workflows of ``workload.BenchWorkflow`` (one trivial activity)
with at most ``--concurrency`` in flight, reads the worker's memory, then sends SIGTERM.

Sides:
  project  ``project_worker.py``: ``workerkit.run_queues`` with every interceptor (logging,
           tracing, metrics), the SDK Prometheus runtime, the HTTP port serving /readyz and
           uvloop, all as deployed. Logs stay at the default level (info) in JSON, written to
           a file: formatting and the write calls are measured as in production, but no
           terminal or pipe reader can slow the worker down, and the log is kept for errors.
           Spans are exported over OTLP/HTTP to a sink in this process that drops them
           (``--no-trace-export`` leaves the interceptor on with export off).
  bare     ``bare_worker.py``: ``temporalio.worker.Worker`` with the same workflow and
           activity, default SDK options and the stdlib event loop; stderr goes to a file.
Both get the same slot, cache and poller counts (``TUNING``) and the same interpreter.
The dev server gives each task queue one partition (``--partitions``): with the server's
default of four, a new workflow task could wait seconds for a poller to reach its partition,
which put server dispatch noise rather than worker cost into p99.

Per round:
  CPU/wf      the worker process's CPU time (user + system, /proc/<pid>/stat) from ready to
              its last result, per workflow: the headline, far steadier than wall-clock
              figures on a shared machine where the dev server takes most of the CPU. Its
              project/bare ratio is given per pair of rounds too (round i of each side), with
              the spread of those ratios.
  throughput  workflows / wall time from the first start call to the last result.
  p50, p99    per-workflow latency from the start call to its result.
  ready       subprocess launch to ready. Both workers check ``is_running`` every 50 ms
              (workerkit's runner; the bare worker copies it). The project then answers 200
              on /readyz, probed every 10 ms; the bare worker prints a line on a pipe. The
              probe adds up to 10 ms to the project's figure.
  RSS         VmRSS (after the round) and VmHWM (peak) from /proc/<pid>/status.
The table shows per-side medians over the measured rounds, and project/bare ratios; the
verdict checks throughput ratio >= 0.97 and p99 ratio <= 1.10. A MISS still exits 0 (the
machine may be noisy); any error (a failed workflow, a worker that does not start or stop
cleanly) exits 1. temporalio may crash at interpreter exit after a clean shutdown, so a
signal exit of the bare worker is accepted; the project worker must exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from asyncio.subprocess import DEVNULL, PIPE
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import temporalio
from temporalio.client import Client
from temporalio.common import VersioningBehavior
from workerkit import Queue, exit_process

from workload import BenchWorkflow

BENCH_DIR = Path(__file__).resolve().parent
Side = Literal["project", "bare"]
SIDES: tuple[Side, Side] = ("project", "bare")
SCRIPTS: dict[Side, Path] = {
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
THROUGHPUT_TARGET = 0.97  # project/bare, at least
P99_TARGET = 1.10  # project/bare, at most
READY_LINE = b"ready"  # what bare_worker.py prints
SERVER_START_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
PROBE_INTERVAL_S = 0.01
WORKFLOW_TIMEOUT = timedelta(minutes=2)
METRICS = (  # RoundResult field, table label, number format
    ("cpu_ms_per_wf", "CPU per workflow (ms)", ".2f"),
    ("throughput_wf_s", "throughput (wf/s)", ".1f"),
    ("p50_ms", "p50 latency (ms)", ".1f"),
    ("p99_ms", "p99 latency (ms)", ".1f"),
    ("ready_s", "start to ready (s)", ".3f"),
    ("rss_mib", "RSS after round (MiB)", ".1f"),
    ("peak_rss_mib", "peak RSS (MiB)", ".1f"),
)


class BenchError(Exception):
    """The bench could not produce a valid measurement."""


@dataclass(frozen=True)
class RoundResult:
    side: Side
    round: int  # 0 is the warm-up
    task_queue: str
    cpu_ms_per_wf: float
    throughput_wf_s: float
    p50_ms: float
    p99_ms: float
    ready_s: float
    rss_mib: float
    peak_rss_mib: float
    exit_code: int


class OtlpSink:
    """An OTLP/HTTP endpoint that accepts and drops exports, counting them."""

    def __init__(self) -> None:
        self.exports = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.exports += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env() -> dict[str, str]:
    """This process's environment without Temporal/worker/OTel settings, plus the bench dir."""
    scrubbed = ("TEMPORAL_", "WORKER_", "OTEL_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(scrubbed)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")]))
    return env


def read_rss_mib(pid: int) -> tuple[float, float]:
    """Return (VmRSS, VmHWM) of ``pid`` in MiB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024  # kB
    return values["VmRSS"], values["VmHWM"]


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
    temporal: str, partitions: int, log: Path
) -> tuple[asyncio.subprocess.Process, Client]:
    """Start a dev server on free loopback ports; return it and a connected client."""
    port = free_port()
    argv = ["server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port)]
    argv += ["--http-port", str(free_port()), "--metrics-port", "0"]
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


async def wait_ready(side: Side, proc: asyncio.subprocess.Process, http_port: int) -> None:
    if side == "bare":
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT_S)
        if line.strip() != READY_LINE:
            raise BenchError(f"exited before ready, with code {await proc.wait()}")
        return
    url = f"http://127.0.0.1:{http_port}/readyz"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not await asyncio.to_thread(probe, url):
        if proc.returncode is not None:
            raise BenchError(f"exited before ready, with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise BenchError(f"/readyz not 200 within {READY_TIMEOUT_S:g}s")
        await asyncio.sleep(PROBE_INTERVAL_S)


async def drive(
    client: Client, task_queue: str, count: int, concurrency: int
) -> tuple[float, list[float]]:
    """Run ``count`` workflows, ``concurrency`` at a time; return (workflows/s, latencies s)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> float:
        text = f"wf-{i}"
        async with gate:
            begin = time.perf_counter()
            result = await client.execute_workflow(
                BenchWorkflow.run,
                text,
                id=f"{task_queue}-{i}",
                task_queue=task_queue,
                execution_timeout=WORKFLOW_TIMEOUT,
            )
            elapsed = time.perf_counter() - begin
        if result != text:
            raise BenchError(f"workflow {i} returned {result!r}, expected {text!r}")
        return elapsed

    begin = time.perf_counter()
    latencies = await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - begin), list(latencies)


async def run_round(
    side: Side,
    index: int,
    *,
    client: Client,
    env: dict[str, str],
    log_dir: Path,
    workflows: int,
    concurrency: int,
) -> RoundResult:
    name = f"bench{index}{side}"
    task_queue = Queue(
        name=name, workflows=[BenchWorkflow], versioning=VersioningBehavior.PINNED
    ).task_queue
    log = log_dir / f"{name}.log"
    if side == "project":
        http_port = free_port()
        env = env | {"WORKER_HTTP_HOST": "127.0.0.1", "WORKER_HTTP_PORT": str(http_port)}
        command, stdout = [str(SCRIPTS[side]), name], DEVNULL
    else:
        http_port, command, stdout = 0, [str(SCRIPTS[side]), task_queue], PIPE
    with log.open("wb") as stderr:
        launched = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *command, env=env, stdin=DEVNULL, stdout=stdout, stderr=stderr
        )
    try:
        await wait_ready(side, proc, http_port)
        ready_s = time.perf_counter() - launched
        cpu_before = read_cpu_s(proc.pid)
        throughput, latencies = await drive(client, task_queue, workflows, concurrency)
        cpu_ms_per_wf = (read_cpu_s(proc.pid) - cpu_before) * 1000 / workflows
        rss, peak = read_rss_mib(proc.pid)
        code = await stop(proc)
        if code != 0 and (side == "project" or code > 0):
            raise BenchError(f"exited with code {code} after SIGTERM")
    except Exception as err:
        raise BenchError(f"{side} worker, round {index}: {err}{log_tail(log)}") from err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    centiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return RoundResult(
        side=side,
        round=index,
        task_queue=task_queue,
        cpu_ms_per_wf=cpu_ms_per_wf,
        throughput_wf_s=throughput,
        p50_ms=centiles[49] * 1000,
        p99_ms=centiles[98] * 1000,
        ready_s=ready_s,
        rss_mib=rss,
        peak_rss_mib=peak,
        exit_code=code,
    )


def describe(r: RoundResult) -> str:
    label = "warm-up" if r.round == 0 else f"round {r.round}"
    return (
        f"{label:>8} {r.side:<7} CPU {r.cpu_ms_per_wf:6.2f} ms/wf  "
        f"{r.throughput_wf_s:7.1f} wf/s  p50 {r.p50_ms:7.1f} ms  "
        f"p99 {r.p99_ms:7.1f} ms  ready {r.ready_s:5.2f} s  "
        f"RSS {r.rss_mib:6.1f} MiB (peak {r.peak_rss_mib:6.1f})  exit {r.exit_code}"
    )


async def bench(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    sink = None if args.no_trace_export else OtlpSink()
    server, client = await start_server(
        args.temporal, args.partitions, log_dir / "temporal-server.log"
    )
    env = base_env() | TUNING | {"TEMPORAL_ADDRESS": client.service_client.config.target_host}
    project_env = env | {"WORKER_LOG_LEVEL": "info", "WORKER_LOG_FORMAT": "json"}
    if sink is not None:
        project_env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint, "OTEL_SERVICE_NAME": "bench"}
    schedule = [(0, side) for side in SIDES]
    schedule += [(i, side) for i in range(1, args.rounds + 1) for side in SIDES]
    rounds: list[RoundResult] = []
    try:
        for index, side in schedule:
            result = await run_round(
                side,
                index,
                client=client,
                env=project_env if side == "project" else env,
                log_dir=log_dir,
                workflows=args.workflows,
                concurrency=args.concurrency,
            )
            print(describe(result), flush=True)
            rounds.append(result)
    finally:
        await stop(server, grace_s=10)
        if sink is not None:
            sink.close()
    return summarize(args, rounds, otlp_exports=None if sink is None else sink.exports)


def summarize(
    args: argparse.Namespace, rounds: list[RoundResult], otlp_exports: int | None
) -> dict[str, Any]:
    measured = [r for r in rounds if r.round > 0]
    medians = {
        side: {
            key: statistics.median(getattr(r, key) for r in measured if r.side == side)
            for key, *_ in METRICS
        }
        for side in SIDES
    }
    ratios = {key: medians["project"][key] / medians["bare"][key] for key, *_ in METRICS}
    # CPU per workflow, round by round: the ratio of each pair (rounds interleave, so a pair
    # ran under the same machine load), and the spread of those ratios around their median.
    by_round = {(r.side, r.round): r.cpu_ms_per_wf for r in measured}
    pair_ratios = [
        by_round[("project", i)] / by_round[("bare", i)]
        for i in range(1, args.rounds + 1)
        if ("project", i) in by_round and ("bare", i) in by_round
    ]
    cpu_pairs = {
        "ratios": pair_ratios,
        "median": statistics.median(pair_ratios),
        "spread_pct": 100 * max(abs(x / statistics.median(pair_ratios) - 1) for x in pair_ratios),
    }
    verdict = {
        "throughput": ratios["throughput_wf_s"] >= THROUGHPUT_TARGET,
        "p99": ratios["p99_ms"] <= P99_TARGET,
    }
    return {
        "config": {
            "rounds": args.rounds,
            "workflows": args.workflows,
            "concurrency": args.concurrency,
            "trace_export": not args.no_trace_export,
            "partitions": args.partitions,
            "tuning": TUNING,
        },
        "environment": {
            "python": platform.python_version(),
            "temporalio": temporalio.__version__,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "rounds": [asdict(r) for r in rounds],
        "median": medians,
        "ratio": ratios,
        "cpu_per_workflow_pairs": cpu_pairs,
        "targets": {"throughput_ratio_min": THROUGHPUT_TARGET, "p99_ratio_max": P99_TARGET},
        "verdict": verdict | {"pass": all(verdict.values())},
        "otlp_exports": otlp_exports,
    }


def table(report: dict[str, Any]) -> str:
    cfg, med, ratio, ok = report["config"], report["median"], report["ratio"], report["verdict"]
    targets = {
        "throughput_wf_s": f">= {THROUGHPUT_TARGET:.2f}  {'PASS' if ok['throughput'] else 'MISS'}",
        "p99_ms": f"<= {P99_TARGET:.2f}  {'PASS' if ok['p99'] else 'MISS'}",
    }
    lines = [
        f"medians of {cfg['rounds']} rounds per side, {cfg['workflows']} workflows per round, "
        f"{cfg['concurrency']} in flight (warm-ups excluded)",
        f"{'':<22} {'project':>9} {'bare':>9} {'project/bare':>13}  target",
    ]
    for key, label, fmt in METRICS:
        lines.append(
            f"{label:<22} {med['project'][key]:9{fmt}} {med['bare'][key]:9{fmt}} "
            f"{ratio[key]:13.3f}  {targets.get(key, '')}".rstrip()
        )
    pairs = report["cpu_per_workflow_pairs"]
    lines.append(
        f"CPU per workflow, project/bare per pair of rounds: median {pairs['median']:.3f}, "
        f"spread ±{pairs['spread_pct']:.1f}% over {len(pairs['ratios'])} pairs "
        f"({', '.join(f'{x:.3f}' for x in pairs['ratios'])})"
    )
    lines.append(
        f"verdict: {'PASS' if ok['pass'] else 'MISS'} (throughput ratio "
        f"{ratio['throughput_wf_s']:.3f} >= {THROUGHPUT_TARGET:.2f}: "
        f"{'PASS' if ok['throughput'] else 'MISS'}; p99 ratio {ratio['p99_ms']:.3f} "
        f"<= {P99_TARGET:.2f}: {'PASS' if ok['p99'] else 'MISS'})"
    )
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=positive, default=3, help="measured rounds per side")
    parser.add_argument("--workflows", type=positive, default=300, help="workflows per round")
    parser.add_argument("--concurrency", type=positive, default=50, help="workflows in flight")
    parser.add_argument(
        "--partitions", type=positive, default=1, help="dev server partitions per task queue"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--log-dir", type=Path, help="keep worker and server logs here")
    parser.add_argument("--no-trace-export", action="store_true", help="no OTLP span export")
    parser.add_argument(
        "--temporal",
        default=shutil.which("temporal") or str(Path(sys.executable).parent / "temporal"),
        help="the temporal CLI (default: on PATH, else next to this Python)",
    )
    args = parser.parse_args(argv)
    if args.workflows < 2:
        parser.error("--workflows must be at least 2 (for percentiles)")
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
    if report["otlp_exports"] is not None:
        print(f"project spans: {report['otlp_exports']} OTLP exports received")
    print(f"total runtime: {report['runtime_s']:.1f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    # Skip interpreter finalization, which temporalio can crash after a clean shutdown.
    exit_process(main())
