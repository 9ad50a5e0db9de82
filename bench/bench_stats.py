"""From runs to verdicts: medians, each comparison's ratio and spread, and the targets."""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import temporalio

from bench_variants import COMPARISONS, MEMORY, TUNING, Comparison, Variant
from run_result import METRICS, RunResult

READY_DELTA_TARGET_S = 0.25  # project - bare start to ready, at most


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
    """:func:`compare` of every comparison that ran."""
    return [c for c in (compare(c, runs) for c in COMPARISONS) if c is not None]


def memory_ratios(medians: Mapping[str, Mapping[str, float]]) -> list[dict[str, Any]]:
    """RSS after a run (medians) of each pair in ``MEMORY`` whose two variants ran: against
    the bare SDK (the targets), and, with ``bare+libs`` in the run, how much of that the
    required libraries alone take (no target: ``pass`` is None)."""
    rss = {name: figures["rss_mib"] for name, figures in medians.items()}
    return [
        {
            "label": m.label,
            "value": rss[m.numerator] / rss[m.denominator],
            "detail": f"{rss[m.numerator]:.1f} / {rss[m.denominator]:.1f} MiB",
            "target": m.target,
            "pass": None if m.target is None else rss[m.numerator] / rss[m.denominator] <= m.target,
        }
        for m in MEMORY
        if m.numerator in rss and m.denominator in rss
    ]


def summarize(
    args: argparse.Namespace,
    variants: list[Variant],
    runs: list[RunResult],
    exports: int,
    image: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report of a bench: its configuration, every run, the medians and the checks
    (``image``: the worker image's size over its base, judged when it was measured)."""
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
    if image is not None:
        figures.append(dict(image))
    checks = [f for f in figures if f["target"] is not None and f["pass"] is not None]
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


def settled(args: argparse.Namespace, runs: list[RunResult], rounds: int) -> bool:
    """Whether enough rounds ran: the minimum, and every spread within the target."""
    if rounds < args.rounds:
        return False
    return all(c["spread_pct"] <= args.spread for c in comparisons(runs))
