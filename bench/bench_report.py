"""What the bench prints: a line per run as it ends, and the table of medians and verdicts."""

from __future__ import annotations

from typing import Any

from run_result import METRICS, RunResult


def describe(r: RunResult) -> str:
    """One run's figures on one line."""
    label = "warm-up" if r.round == 0 else f"round {r.round}"
    return (
        f"{label:>8} {r.variant:<15} CPU {r.cpu_ms_per_wf:6.2f} ms/wf  "
        f"{r.throughput_wf_s:6.1f} wf/s  p50 {r.p50_ms:7.1f} ms  p99 {r.p99_ms:7.1f} ms  "
        f"ready {r.ready_s:5.2f} s  RSS {r.rss_mib:6.1f} MiB (peak {r.peak_rss_mib:6.1f})"
    )


def verdict(passed: bool | None) -> str:
    """PASS or MISS against a target; "" where there is none."""
    return "" if passed is None else ("PASS" if passed else "MISS")


def table(report: dict[str, Any]) -> str:
    """The medians of every variant, then the comparisons and figures against their targets."""
    cfg, med = report["config"], report["median"]
    lines = [
        f"medians of {cfg['rounds']} rounds, {cfg['workflows']} echo workflows per run "
        f"(chain x0.2, saga x0.5), {cfg['concurrency']} in flight (warm-ups excluded)",
        f"{'variant':<16}" + "".join(f"{label:>11}" for _, label, _ in METRICS),
    ]
    for name, figures in med.items():
        lines.append(f"{name:<16}" + "".join(f"{figures[k]:11{fmt}}" for k, _, fmt in METRICS))
    lines += ["", "CPU per workflow, ratio per round: median, ±spread, rounds, target"]
    for c in report["comparisons"]:
        target = "" if c["target"] is None else f"<= {c['target']:.2f} {verdict(c['pass'])}"
        lines.append(
            f"  {c['label']:<36} {c['median']:6.3f}  ±{c['spread_pct']:4.1f}%  "
            f"n={len(c['ratios']):<3} {target}".rstrip()
        )
    for line in report["figures"]:
        if line["value"] is None:  # not measured (the image, without a Docker engine)
            lines.append(f"  {line['label']:<36} {line.get('note', 'not measured')}")
            continue
        target = "" if line["target"] is None else f"<= {line['target']:.2f} "
        detail = f"({line['detail']})  " if line.get("detail") else ""
        lines.append(
            f"  {line['label']:<36} {line['value']:6.3f}  {detail}{target}"
            f"{verdict(line['pass'])}".rstrip()
        )
        if line.get("note"):
            lines.append(f"  {'':<36} {line['note']}")
    lines.append(f"verdict: {'PASS' if report['pass'] else 'MISS'}")
    return "\n".join(lines)
