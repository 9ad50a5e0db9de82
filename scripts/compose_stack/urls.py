"""Where the running stack answers: the Temporal UI and gRPC, Prometheus, Grafana, and which
workers run."""

from __future__ import annotations

import sys
from collections import Counter

from .containers import is_worker, running, service_of
from .stack import GRAFANA, Stack


def print_urls(stack: Stack) -> None:
    """Print the stack's URLs (on 127.0.0.1, the ports it publishes) and its workers."""
    ns = stack.var("FLEET_NAMESPACE", "fleet")
    grpc = f"127.0.0.1:{stack.var('FLEET_TEMPORAL_PORT', '7233')}"
    listed = stack.containers()
    counts = Counter(service_of(c) for c in listed if is_worker(c) and running(c))
    workers = "  ".join(f"{service} x{n}" for service, n in sorted(counts.items()))
    if any(service_of(c) == GRAFANA for c in listed):
        grafana = (
            f"http://127.0.0.1:{stack.var('FLEET_GRAFANA_PORT', '3000')}  (dashboards: "
            f"Temporal fleet; admin / {stack.var('GRAFANA_ADMIN_PASSWORD', 'admin')})"
        )
    else:
        grafana = "not started (profile grafana: FLEET_GRAFANA=1 starts it; its image is pulled)"
    print(
        f"""
  Temporal UI    http://127.0.0.1:{stack.var("FLEET_UI_PORT", "8233")}/namespaces/{ns}/workflows
  Temporal gRPC  {grpc}  (TEMPORAL_ADDRESS={grpc} TEMPORAL_NAMESPACE={ns} uv run fleet …)
  Prometheus     http://127.0.0.1:{stack.var("FLEET_PROMETHEUS_PORT", "9090")}/targets
  Grafana        {grafana}
  Workers        {workers or "none"}
""",
        file=sys.stderr,
    )
