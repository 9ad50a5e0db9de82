"""What each dependency of a worker costs: resident memory once imported, and disk.

    uv run python bench/import_costs.py [--repeat 5] [--json PATH]
    docker run -i --rm --entrypoint python IMAGE - --sizes-only < bench/import_costs.py

Memory: each figure is the VmRSS (``/proc/self/status``) a fresh interpreter gains by
importing the modules of one step, the median of ``--repeat`` processes, with compiled
bytecode (a first pass writes it to a temporary ``PYTHONPYCACHEPREFIX``, as the images ship
it). "In order" imports the steps one after the other, as the production worker reaches them
(``fleet worker orders`` with encryption, trace export and PostgreSQL), so a package two steps
share counts once, in the first; "alone" imports only the bare SDK and that step.

Disk: the installed size (files and their bytecode) of each of workerkit's direct
requirements and of the requirements only it brings in; a package that several bring in
counts in the first (in the order of ``REQUIREMENTS``, the worker's again); then workerkit and
the installed queues. Run inside an image (``--sizes-only``, reading the script from stdin),
it gives the image's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

MIB = 2**20
BARE = "the bare SDK (temporalio client and worker)"
# The steps of `fleet worker orders` in the production configuration, in the order it reaches
# them: the CLI and its settings, then the tracer provider, the codec, the orders queue's
# ledger (SQLAlchemy, psycopg), the readiness check of its schema.
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (BARE, ("temporalio.client", "temporalio.worker")),
    ("uvloop", ("uvloop",)),
    ("prometheus-client", ("prometheus_client",)),
    (
        "OpenTelemetry API and SDK, contrib.opentelemetry",
        ("opentelemetry.sdk.trace.export", "temporalio.contrib.opentelemetry"),
    ),
    ("workerkit (the library)", ("workerkit",)),
    ("workerkit.cli (the fleet command)", ("workerkit.cli",)),
    (  # the exporter imports requests when it is created
        "OTLP/HTTP span exporter, with requests",
        ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "requests"),
    ),
    ("cryptography (AES-GCM)", ("cryptography.hazmat.primitives.ciphers.aead",)),
    ("SQLAlchemy Core", ("sqlalchemy", "sqlalchemy.engine")),
    (
        "psycopg, SQLAlchemy's PostgreSQL dialect",
        ("psycopg", "sqlalchemy.dialects.postgresql.psycopg"),
    ),
    ("Alembic", ("alembic.runtime.migration", "alembic.script")),
    ("the orders queue", ("orders.queue",)),
)

# workerkit's requirements in the order a production worker loads them.
REQUIREMENTS = (
    "temporalio",
    "uvloop",
    "prometheus-client",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-http",
    "cryptography",
    "sqlalchemy",
    "psycopg",
    "alembic",
)
QUEUES_ENTRY_POINT = "workerkit.queues"

_PROBE = """
import importlib, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
for step in sys.argv[1:]:
    for name in step.split(","):
        if name:
            importlib.import_module(name)
    print(rss(), flush=True)
"""


def probe(steps: list[tuple[str, ...]], env: dict[str, str]) -> list[int]:
    """RSS in bytes of a fresh interpreter: at start, then after each step's imports."""
    args = [",".join(modules) for modules in steps]
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, "", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [int(line) for line in out.split()]


def rss_costs(repeat: int) -> list[dict[str, object]]:
    """Each step's RSS in MiB, in order and alone, medians of ``repeat`` processes."""
    with tempfile.TemporaryDirectory(prefix="import-costs-") as cache:
        env = dict(os.environ, PYTHONPYCACHEPREFIX=cache)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        chain = [modules for _, modules in STEPS]
        probe(chain, env)  # writes the bytecode
        ordered = [probe(chain, env) for _ in range(repeat)]
        bare = chain[0]
        alone = {
            label: [probe([bare, modules], env) for _ in range(repeat)]
            for label, modules in STEPS[1:]
        }
    rows: list[dict[str, object]] = [
        {
            "step": "Python",
            "in_order_mib": statistics.median(run[0] for run in ordered) / MIB,
            "alone_mib": None,
        }
    ]
    for i, (label, modules) in enumerate(STEPS, 1):
        rows.append(
            {
                "step": label,
                "modules": list(modules),
                "in_order_mib": statistics.median(run[i] - run[i - 1] for run in ordered) / MIB,
                "alone_mib": None
                if label == BARE
                else statistics.median(run[2] - run[1] for run in alone[label]) / MIB,
            }
        )
    return rows


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _requirements(dist: str, extras: set[str]) -> list[tuple[str, set[str]]]:
    """The installed requirements of ``dist`` with ``extras``: markers other than extras are
    left to the installer, so a requirement counts when it is installed."""
    found: list[tuple[str, set[str]]] = []
    for req in metadata.requires(dist) or []:
        spec, _, marker = req.partition(";")
        wanted = re.findall(r"""extra\s*==\s*["']([^"']+)["']""", marker)
        if wanted and not extras & {_name(w) for w in wanted}:
            continue
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", spec)
        if match is None:
            continue
        name = _name(match.group(1))
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found.append((name, {_name(e) for e in (match.group(2) or "").split(",") if e.strip()}))
    return found


def _closure(dist: str, extras: set[str]) -> list[str]:
    seen: list[str] = []
    todo = [(dist, extras)]
    while todo:
        name, wanted = todo.pop()
        if name in seen:
            continue
        seen.append(name)
        todo += _requirements(name, wanted)
    return seen


def installed_bytes(dist: str) -> int:
    """The size on disk of ``dist``'s files and of the bytecode compiled from them."""
    files = metadata.distribution(dist).files or []
    total = 0
    for file in files:
        path = Path(str(file.locate()))
        if not path.is_file():
            continue
        total += path.stat().st_size
        if path.suffix == ".py":
            for pyc in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
                total += pyc.stat().st_size
    return total


def disk_costs(root: str = "workerkit") -> list[dict[str, object]]:
    """Each direct requirement of ``root``, with what only it brings in, then ``root`` and the
    installed queues, in MB (10^6 bytes)."""
    assigned: set[str] = {root}
    rows: list[dict[str, object]] = []
    ranked = sorted(
        _requirements(root, set()),
        key=lambda r: REQUIREMENTS.index(r[0]) if r[0] in REQUIREMENTS else len(REQUIREMENTS),
    )
    for name, extras in ranked:
        brought = [d for d in _closure(name, extras) if d not in assigned]
        assigned |= set(brought)
        rows.append(
            {
                "requirement": name + (f"[{','.join(sorted(extras))}]" if extras else ""),
                "packages": brought,
                "mb": sum(installed_bytes(d) for d in brought) / 1e6,
            }
        )
    queues = sorted({_name(ep.dist.name) for ep in _queue_entry_points() if ep.dist is not None})
    for name in [root, *queues]:
        rows.append({"requirement": name, "packages": [name], "mb": installed_bytes(name) / 1e6})
    return rows


def _queue_entry_points() -> list[metadata.EntryPoint]:
    return list(metadata.entry_points(group=QUEUES_ENTRY_POINT))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="processes per figure")
    parser.add_argument("--sizes-only", action="store_true", help="only the disk figures")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    report: dict[str, object] = {"python": sys.version.split()[0]}
    if not args.sizes_only:
        rows = rss_costs(args.repeat)
        report["rss"] = rows
        print(f"RSS, MiB (median of {args.repeat} fresh processes)   in order   alone")
        for row in rows:
            alone = row["alone_mib"]
            print(
                f"  {row['step']:<52} {row['in_order_mib']:7.1f}  "
                + ("" if alone is None else f"{alone:7.1f}")
            )
    disk = disk_costs()
    report["disk"] = disk
    print("installed size, MB (with bytecode where compiled)")
    for row in disk:
        print(f"  {row['requirement']:<40} {row['mb']:6.1f}  {' '.join(row['packages'])}")
    print(f"  {'total':<40} {sum(float(r['mb']) for r in disk):6.1f}")  # type: ignore[arg-type]
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
