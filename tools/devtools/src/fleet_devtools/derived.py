"""Write every derived file of the repository: ``python -m fleet_devtools.derived``.

    uv run python -m fleet_devtools.derived          # rewrite what is stale (make sync)
    uv run python -m fleet_devtools.derived --check  # change nothing; exit 1 naming what is stale

The registry (the installed queue packages, :func:`workerkit.discover_queues`) is the only list
of queues, and deploy/grafana/generate.py the only source of the dashboards. Each derived file
is whole, in a place of its own, and its first lines say it is generated and from what; every
hand-written file stays hand-written:

- ``docker-compose.queues.yml``: every compose service on a queue's image (built from
  ``deploy/docker/worker/Dockerfile`` with ``QUEUE=<queue>``): per queue its worker (the
  ``x-worker`` template of docker-compose.yml) and, if it keeps state, the one-shot
  ``<queue>-migrate`` its workers wait for (``x-db-migrate``), and the one-shot
  ``<queue>-limits`` that sets its task queue config on the server (``x-limits-apply``);
  once, ``namespace-init`` and the ``codec-server`` on the first queue's image. Compose
  reads it after docker-compose.yml.
- ``deploy/prometheus/prometheus-compose.yml``: the compose stack's Prometheus, job
  temporal-workers discovering every queue's service through Docker's DNS (which answers a
  service name with every replica's address, so ``make scale`` needs no change here).
- ``helm/temporal-fleet/files/queues.yaml``: the chart's queues (the chart reads this file):
  each one's task queue, workflow types, whether it keeps state and its shape.
- ``helm/temporal-fleet/ci/prod-digests.yaml``: a placeholder image digest per queue, so that
  prod (which renders only images pinned by digest) lints and renders without a release; a
  release passes the digests it pushed instead.
- ``helm/temporal-fleet/files/grafana/dashboards/*.json``: the Grafana dashboards, built by
  deploy/grafana/generate.py (the chart ships them; compose's Grafana mounts them).
- ``docs/reference/*.md``: the docs site's reference pages (settings, the ``fleet`` CLI, the
  chart's values, metrics and alerts), from their sources (:mod:`fleet_devtools.reference`).

tests/tools/test_derived_files.py is the one drift check: none can go stale.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml
from workerkit import ConfigurationError, Queue, discover_queues
from workerkit._registry import SHAPES

from fleet_devtools import reference
from fleet_devtools._scaffold import ScaffoldError, workspace_root

__all__ = [
    "CHART_QUEUES",
    "COMPOSE_QUEUES",
    "DASHBOARDS",
    "DEFAULT_SHAPE",
    "DERIVED",
    "FROM_REGISTRY",
    "PLACEHOLDER_DIGEST",
    "PROD_DIGESTS",
    "PROMETHEUS_COMPOSE",
    "SHAPES",
    "RegisteredQueue",
    "chart_queues",
    "compose_queues",
    "dashboards",
    "main",
    "prod_digests",
    "prometheus_compose",
    "registry",
    "render",
    "sync",
]

# The derived files, relative to the repository root.
COMPOSE_QUEUES = "docker-compose.queues.yml"
PROMETHEUS_COMPOSE = "deploy/prometheus/prometheus-compose.yml"
CHART_QUEUES = "helm/temporal-fleet/files/queues.yaml"
PROD_DIGESTS = "helm/temporal-fleet/ci/prod-digests.yaml"
DASHBOARDS = "helm/temporal-fleet/files/grafana/dashboards"
# The dashboards' source: code of this repository, found beside this package (not under the
# --root a check is given, which holds only the files it checks).
DASHBOARD_GENERATOR = Path(__file__).resolve().parents[4] / "deploy" / "grafana" / "generate.py"
# Their inputs besides the registry.
COMPOSE = "docker-compose.yml"
DOCKERFILE = "deploy/docker/worker/Dockerfile"
# docker-compose.yml's templates of the services on a queue's image (besides x-build).
TEMPLATES = (
    "x-worker",
    "x-db-migrate",
    "x-limits-apply",
    "x-namespace-init",
    "x-codec-server",
)

COMMAND = "python -m fleet_devtools.derived"
IMAGE_PREFIX = "temporal-fleet-"
METRICS_PORT = 9000
# A digest of the right form that no registry serves: rendered, it never pulls an image.
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
# A queue's shape when none is given: the registry's default (Queue.shape).
DEFAULT_SHAPE = str(next(f.default for f in fields(Queue) if f.name == "shape"))


@dataclass(frozen=True)
class RegisteredQueue:
    """One registered queue: what the derived files depend on. (Descriptions are left out of
    them, so rewording a queue makes nothing stale.)"""

    name: str
    task_queue: str
    workflow_types: tuple[str, ...] = ()
    # Whether its activities keep state in the database (it has migrations).
    keeps_state: bool = False
    # How its work behaves: short, long-activities or batch (the chart's scaling defaults).
    shape: str = DEFAULT_SHAPE
    # The workflow type a new build runs before taking traffic (its rollout policy's gate).
    gate_workflow: str = ""

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(
                f"queue {self.name}: shape {self.shape!r} is not one of {', '.join(SHAPES)}"
            )


def registry() -> list[RegisteredQueue]:
    """The installed queues, by name."""
    return [
        RegisteredQueue(
            q.name,
            q.task_queue,
            tuple(sorted(q.workflow_types())),
            q.migrations is not None,
            q.shape,
            q.rollout.gate_workflow or "",
        )
        for q in discover_queues().values()
    ]


def _header(*lines: str) -> str:
    """The first lines of a derived file: generated, by what, from what."""
    return "".join(f"# {line}\n" if line else "#\n" for line in lines)


# -- docker-compose.queues.yml ----------------------------------------------------------------


def image(queue: str) -> str:
    """The compose image reference of a queue's image."""
    return f"{IMAGE_PREFIX}{queue}:${{FLEET_TAG:-dev}}"


def _yaml(value: Any, indent: int) -> list[str]:
    """``value`` as block YAML, each line indented by ``indent`` spaces."""
    text = yaml.safe_dump(value, sort_keys=False, width=1000)
    return [" " * indent + line for line in text.splitlines()]


def compose_queues(compose: str, queues: Sequence[RegisteredQueue]) -> str:
    """docker-compose.queues.yml for ``queues``, from the x-* templates of ``compose`` (the
    text of docker-compose.yml).

    Raises:
        ScaffoldError: A template is missing.
    """
    hand_written = yaml.safe_load(compose) or {}

    def template(key: str) -> dict[str, Any]:
        value = hand_written.get(key)
        if not isinstance(value, dict):
            raise ScaffoldError(f"{COMPOSE} has no {key} template (a mapping)")
        return copy.deepcopy(value)

    lines = [
        *_header(
            f"Generated by `{COMMAND}` (make sync) from the queue registry",
            f"and the x-* templates of {COMPOSE}: do not edit (a test fails when it is stale).",
            f"Every service on a queue's image ({DOCKERFILE}, QUEUE=<queue>);",
            f"compose reads it after {COMPOSE}: -f {COMPOSE} -f {COMPOSE_QUEUES}.",
        ).splitlines(),
    ]
    if not queues:
        return "\n".join([*lines, "services: {}", ""])
    # The templates, as docker-compose.yml has them (YAML anchors do not cross files).
    build = template("x-build")
    lines += ["", "x-build: &build", *_yaml({k: v for k, v in build.items() if k != "args"}, 2)]
    lines += ["x-build-args: &build-args", *_yaml(build.get("args") or {}, 2)]
    for key in TEMPLATES:
        lines += [f"{key}: &{key.removeprefix('x-')}", *_yaml(template(key), 2)]

    def service(name: str, comment: str, key: str, queue: str) -> list[str]:
        return [
            *([""] if lines[-1] != "services:" else []),
            f"  {name}:  # {comment}",
            f"    <<: *{key.removeprefix('x-')}",
            f"    image: {image(queue)}",
            "    build:",
            "      <<: *build",
            f"      dockerfile: {DOCKERFILE}",
            "      args:",
            "        <<: *build-args",
            f"        QUEUE: {queue}",
        ]

    lines += ["", "services:"]
    first = queues[0].name
    for name in ("namespace-init", "codec-server"):
        comment = f"any queue's image has the fleet CLI; this one is {first}'s"
        lines += service(name, comment, f"x-{name}", first)
    for q in queues:
        if q.keeps_state:
            # Its own image: an image ships its queue's migrations and no other queue's.
            migrate = f"{q.name}-migrate"
            lines += service(
                migrate, f"{q.name}'s schema, before its workers", "x-db-migrate", q.name
            )
        lines += service(
            f"{q.name}-limits",
            f"{q.name}'s rate limits and fairness weights",
            "x-limits-apply",
            q.name,
        )
        lines += service(q.name, f"task queue {q.task_queue}", "x-worker", q.name)
        if q.keeps_state:
            waits_for = template("x-worker").get("depends_on") or {}
            waits_for[migrate] = {"condition": "service_completed_successfully"}
            lines += ["    depends_on:", *_yaml(waits_for, 6)]
    return "\n".join([*lines, ""])


# -- deploy/prometheus/prometheus-compose.yml ---------------------------------------------------


def prometheus_compose(queues: Sequence[RegisteredQueue]) -> str:
    """The compose stack's Prometheus configuration, scraping every queue's service."""
    if queues:
        discovery = "\n".join(
            [
                "    dns_sd_configs:",
                "      - names:",
                *(f"          - {q.name}" for q in queues),
                "        type: A",
                f"        port: {METRICS_PORT}",
                "        refresh_interval: 5s",
            ]
        )
    else:
        discovery = "    static_configs: []"
    return (
        _header(
            f"Generated by `{COMMAND}` (make sync) from the queue registry:",
            "do not edit (a test fails when it is stale); its text is in the generator,",
            "tools/devtools/src/fleet_devtools/derived.py.",
            "",
            "Prometheus for the docker compose stack (`make up`): scrapes every replica of every",
            "queue's worker. Docker's DNS answers a compose service name with the address of each",
            "of its containers, so `make scale QUEUE=orders N=3` adds targets by itself. Same job",
            "name and rules as prometheus.yml (the `make dev` stack): docker-compose.yml mounts",
            "this file and the chart's rules at their repository paths under /etc/temporal-fleet,",
            "so the same relative rule_files path names them here, in the container and for",
            "promtool.",
        )
        + f"""global:
  scrape_interval: 5s
  evaluation_interval: 15s

rule_files:
  - ../../helm/temporal-fleet/files/prometheus/rules/*.yml

scrape_configs:
  # The job name is part of the alert rules (TemporalWorkerDown): keep it.
  - job_name: temporal-workers
    # Every queue's compose service.
{discovery}
    relabel_configs:
      # The compose service, i.e. the queue: queue="orders".
      - source_labels: [__meta_dns_name]
        target_label: queue

  # The services' shared database, through its exporter (alert FleetDatabaseDown).
  - job_name: postgres
    static_configs:
      - targets: [postgres-exporter:9187]
"""
    )


# -- helm/temporal-fleet/files/queues.yaml ------------------------------------------------------


def chart_queues(queues: Sequence[RegisteredQueue]) -> str:
    """The chart's list of queues (templates/_queues.tpl, temporal-fleet.queues, reads it)."""
    text = _header(
        f"Generated by `{COMMAND}` (make sync) from the queue registry:",
        "do not edit (a test fails when it is stale). The chart's queues, exactly the registered",
        "ones (templates/_queues.tpl reads this file); set a queue's settings under",
        "queues.<name> in values, which cannot change these fields:",
        "- taskQueue: polled by its workers and watched by KEDA;",
        "- workflowTypes: registered by its workers; the ServiceMonitor keeps only series of",
        "  these (serviceMonitor.keepRegisteredWorkflowTypesOnly);",
        "- keepsState: its activities keep state: its workers get DATABASE_URL from",
        "  database.existingSecret and the pre-install/pre-upgrade hook migrates its schema;",
        "  without a database it runs at most one replica;",
        "- shape: short, long-activities or batch; the autoscalers' defaults follow it (scale to",
        "  zero, triggers, cooldown and scale-down policies: docs/how-to/scale.md);",
        "- gateWorkflowType (if declared): what a new build runs before taking traffic, in",
        "  `fleet deploy rollout` and as temporal-worker-controller's rollout gate (the default of",
        "  rollout.controller.gateWorkflowType).",
    )
    if not queues:
        return text + "{}\n"
    for q in queues:
        text += (
            f"{q.name}:\n"
            f"  taskQueue: {json.dumps(q.task_queue)}\n"
            f"  workflowTypes: {json.dumps(list(q.workflow_types))}\n"
            f"  keepsState: {json.dumps(q.keeps_state)}\n"
            f"  shape: {json.dumps(q.shape)}\n"
        )
        if q.gate_workflow:
            text += f"  gateWorkflowType: {json.dumps(q.gate_workflow)}\n"
    return text


def prod_digests(queues: Sequence[RegisteredQueue]) -> str:
    """Placeholder digests for every queue, for linting and rendering prod without a release."""
    text = _header(
        f"Generated by `{COMMAND}` (make sync) from the queue registry: do not edit.",
        "Prod renders only images pinned by digest (image.requireDigest), and only the release",
        "pipeline knows them: it passes the digest it pushed for each queue",
        "(--set queues.<queue>.image.digest=sha256:... or a values file of its own). This file",
        "stands in for those in make helm-lint and the chart's tests: one placeholder per",
        "registered queue, of the right form, which no registry serves.",
    )
    if not queues:
        return text + "queues: {}\n"
    text += "queues:\n"
    for q in queues:
        text += f"  {q.name}:\n    image:\n      digest: {json.dumps(PLACEHOLDER_DIGEST)}\n"
    return text


# -- all of them --------------------------------------------------------------------------------


# -- the Grafana dashboards ------------------------------------------------------------------


def dashboards() -> dict[str, str]:
    """The dashboards deploy/grafana/generate.py builds, by their path in the repository.

    Raises:
        ScaffoldError: The generator is not there (this package is not in its workspace).
    """
    spec = importlib.util.spec_from_file_location("fleet_dashboards", DASHBOARD_GENERATOR)
    if spec is None or spec.loader is None or not DASHBOARD_GENERATOR.is_file():
        raise ScaffoldError(f"{DASHBOARD_GENERATOR} does not exist")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while defining
    spec.loader.exec_module(module)
    rendered: dict[str, str] = module.render()
    return {f"{DASHBOARDS}/{name}": text for name, text in rendered.items()}


# Every derived file, relative to the repository root: those the queue registry writes (a
# new queue changes each of them; its settings class is on the settings page), then the
# dashboards and the other reference pages.
FROM_REGISTRY = (COMPOSE_QUEUES, PROMETHEUS_COMPOSE, CHART_QUEUES, PROD_DIGESTS, reference.SETTINGS)
DERIVED = (
    *FROM_REGISTRY,
    *sorted(dashboards()),
    *(page for page in reference.PAGES if page not in FROM_REGISTRY),
)


def render(root: Path, queues: Sequence[RegisteredQueue]) -> dict[str, str]:
    """Every derived file for ``queues``, by its path relative to ``root``.

    Raises:
        ScaffoldError: docker-compose.yml lacks a template.
    """
    queues = sorted(queues, key=lambda q: q.name)
    compose = root / COMPOSE
    if not compose.is_file():
        raise ScaffoldError(f"{compose} does not exist")
    return {
        COMPOSE_QUEUES: compose_queues(compose.read_text(), queues),
        PROMETHEUS_COMPOSE: prometheus_compose(queues),
        CHART_QUEUES: chart_queues(queues),
        PROD_DIGESTS: prod_digests(queues),
        **dashboards(),
        **reference.pages(root),
    }


def sync(root: Path, queues: Sequence[RegisteredQueue] | None = None, *, write: bool) -> list[str]:
    """Bring the derived files under ``root`` up to date (``write``) or only compare them;
    return those that are (were) stale. ``queues`` defaults to the installed ones."""
    queues = registry() if queues is None else queues
    stale = [
        f"services/{q.name}: missing (queue {q.name} is registered)"
        for q in queues
        if not (root / "services" / q.name).is_dir()
    ]
    for rel, text in render(root, queues).items():
        path = root / rel
        if not path.is_file() or path.read_text() != text:
            stale.append(rel)
            if write:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND, description=(__doc__ or "").splitlines()[0].rstrip(".")
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    parser.add_argument("--root", type=Path, help="repository root (default: found from the cwd)")
    args = parser.parse_args(argv)
    try:
        root = args.root.resolve() if args.root else workspace_root(Path.cwd())
        stale = sync(root, write=not args.check)
    except (ScaffoldError, ConfigurationError) as err:  # a template, or a queue that won't load
        print(f"error: {err}", file=sys.stderr)
        return 2
    for item in stale:
        print(("stale: " if args.check else "updated: ") + item)
    if args.check and stale:
        print(f"run `make sync` ({COMMAND})", file=sys.stderr)
        return 1
    if not stale:
        print("the derived files are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
