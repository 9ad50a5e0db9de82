"""What one run measured, and which of its figures the bench takes medians of."""

from __future__ import annotations

from dataclasses import dataclass

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
class RunResult:
    """One run of one variant: its figures, as ``run.py``'s docstring defines them."""

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
