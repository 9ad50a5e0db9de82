"""The docs site's reference pages, generated from their sources (never retyped).

- ``docs/reference/settings.md``: every variable a worker or ``fleet`` reads: the SDK's
  ``TEMPORAL_*`` connection variables, the ``WORKER_*`` settings class, every service's
  settings class (each a :class:`workerkit.EnvSettings`), and the variables read one by one
  (:data:`VARIABLES`, which names each by the constant its module reads it through).
- ``docs/reference/cli.md``: ``fleet`` and every subcommand, from the parser itself.
- ``docs/reference/chart-values.md``: the chart's values, from the ``# --`` comments of
  ``values.yaml`` (the convention of helm-docs: a comment starting ``# --`` documents the key
  below it), with each default read from the same file.
- ``docs/reference/metrics.md``: the metrics a worker serves (workerkit's registry and every
  queue's own, :mod:`workerkit.metrics`), then the chart's recording and alert rules.

They are derived files: ``python -m fleet_devtools.derived`` writes them and its ``--check`` (the
drift test) fails when one is stale.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY
from workerkit import EnvSettings, WorkerSettings, discover_queues
from workerkit._database import DATABASE_POOL_SIZE_VARIABLE, DATABASE_URL_VARIABLE
from workerkit._encryption import KEYS_FILE_VARIABLE, KEYS_VARIABLE, MODE_VARIABLE
from workerkit._replay_gate import HISTORIES_VARIABLE
from workerkit._settings import STATE_DIR_VARIABLE
from workerkit._versioning import BUILD_ID_VARIABLE, DEPLOYMENT_NAME_VARIABLE
from workerkit.cli import build_parser
from workerkit.cli._codec import TOKEN_FILE_VARIABLE, TOKEN_VARIABLE
from workerkit.cli._rollout import PROMETHEUS_VARIABLE

from fleet_devtools._scaffold import ScaffoldError

__all__ = [
    "PAGES",
    "RULES",
    "VALUES",
    "VARIABLES",
    "Variable",
    "chart_values",
    "cli",
    "documented_keys",
    "metrics",
    "pages",
    "settings",
]

SETTINGS = "docs/reference/settings.md"
CLI = "docs/reference/cli.md"
CHART_VALUES = "docs/reference/chart-values.md"
METRICS = "docs/reference/metrics.md"
PAGES = (SETTINGS, CLI, CHART_VALUES, METRICS)

VALUES = "helm/temporal-fleet/values.yaml"
RULES = "helm/temporal-fleet/files/prometheus/rules/temporal-fleet.yml"
# The help text's width: fixed, so the page does not depend on the terminal it was made in.
HELP_COLUMNS = "96"


@dataclass(frozen=True)
class Variable:
    """A variable read on its own, not through a settings class."""

    name: str
    default: str
    meaning: str


# Each name is the constant its module reads, so a renamed variable cannot leave this stale.
VARIABLES = (
    Variable(
        DATABASE_URL_VARIABLE,
        "unset: SQLite files in WORKER_STATE_DIR",
        "The services' shared state, postgresql://USER:PASSWORD@HOST:PORT/NAME (see "
        "[Where state lives](../explanation/state.md)).",
    ),
    Variable(
        DATABASE_POOL_SIZE_VARIABLE,
        "the activity slots, at most 4",
        "Database connections per worker process.",
    ),
    Variable(
        STATE_DIR_VARIABLE,
        ".data (make dev); /tmp in the images",
        "Where a worker without DATABASE_URL keeps its SQLite files.",
    ),
    Variable(
        KEYS_VARIABLE,
        "unset: payloads are not encrypted",
        "The payload keyring: `id:base64key` entries, the first one encrypts (see "
        "[Rotate the payload keys](../how-to/encryption.md)).",
    ),
    Variable(KEYS_FILE_VARIABLE, "unset", f"A file holding {KEYS_VARIABLE} (a mounted Secret)."),
    Variable(
        MODE_VARIABLE,
        "required when keys are set",
        "`encrypt`, or `decrypt-only` while a fleet is moving to encryption.",
    ),
    Variable(
        DEPLOYMENT_NAME_VARIABLE,
        "the queue's name",
        "The Worker Deployment of a versioned worker.",
    ),
    Variable(
        BUILD_ID_VARIABLE,
        "a hash of the queue's code",
        "The build id a versioned worker registers (set: versioning is on).",
    ),
    Variable(
        HISTORIES_VARIABLE,
        "unset",
        "More stored histories the replay gate replays, besides the queue's own.",
    ),
    Variable(
        PROMETHEUS_VARIABLE,
        "unset: the rollout judges the server's data only",
        "The Prometheus a rollout queries for the queue's PromQL checks.",
    ),
    Variable(TOKEN_VARIABLE, "required by fleet codec-server", "The codec server's bearer token."),
    Variable(TOKEN_FILE_VARIABLE, "unset", f"A file holding {TOKEN_VARIABLE}."),
)

# The SDK reads these itself (temporalio.envconfig); they are listed, not re-implemented.
TEMPORAL = (
    ("TEMPORAL_ADDRESS", "localhost:7233", "host:port of the Temporal frontend"),
    ("TEMPORAL_NAMESPACE", "default", "the namespace"),
    ("TEMPORAL_API_KEY", "unset", "an API key (Temporal Cloud); turns TLS on"),
    ("TEMPORAL_TLS", "false", "connect with TLS"),
    ("TEMPORAL_TLS_CLIENT_CERT_PATH", "unset", "mTLS client certificate (PEM)"),
    ("TEMPORAL_TLS_CLIENT_KEY_PATH", "unset", "mTLS client key (PEM)"),
    ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", "unset", "CA bundle of the server certificate"),
    ("TEMPORAL_TLS_SERVER_NAME", "the host", "name to verify in the server certificate"),
    ("TEMPORAL_PROFILE", "default", "the profile of the TOML configuration file"),
    ("TEMPORAL_CONFIG_FILE", "the SDK's default path", "the TOML configuration file"),
)

_HEADER = (
    "<!-- Generated by `python -m fleet_devtools.derived` (make sync) from {source}: "
    "do not edit. -->\n"
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(head: tuple[str, ...], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _setting_rows(cls: type[EnvSettings]) -> list[tuple[str, ...]]:
    """``(variable, default, accepts, meaning)`` of each field of a settings class."""
    rows: list[tuple[str, ...]] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        default = f.default
        if isinstance(default, timedelta):
            shown = f"{default.total_seconds():g}s"
        elif isinstance(default, bool):
            shown = str(default).lower()
        elif default is None:
            shown = "unset"
        else:
            shown = str(default) or '""'
        rows.append(
            (
                f"`{cls.variable(f.name)}`",
                f"`{shown}`",
                f.metadata["accepts"].what,
                f.metadata["doc"],
            )
        )
    return rows


def _settings_classes() -> list[type[EnvSettings]]:
    """Every settings class of the installed queues' own packages (loaded with them; a
    class any other code in the process declares is not theirs)."""
    packages = {
        p for q in discover_queues().values() for p in q.code_packages() if p != "workerkit"
    }
    found: list[type[EnvSettings]] = []
    pending = list(EnvSettings.__subclasses__())
    while pending:
        cls = pending.pop(0)
        pending += cls.__subclasses__()
        if cls.__module__.split(".")[0] in packages:
            found.append(cls)
    return sorted(found, key=lambda c: c.env_prefix)


def settings() -> str:
    """The page of every variable."""
    out = [
        _HEADER.format(source="the settings classes and fleet_devtools.reference.VARIABLES"),
        "# Settings\n",
        "Every variable a worker or `fleet` reads. An unset or blank variable keeps its default; "
        "a value a setting does not accept stops the worker with exit code 2 and one line "
        "naming the variable. `fleet settings` prints the worker settings on any machine.\n",
        "## Connection (the SDK's)\n",
        "Read by the SDK's `temporalio.envconfig`, as every Temporal client does.\n",
        _table(("variable", "default", "meaning"), [(f"`{n}`", d, m) for n, d, m in TEMPORAL]),
        "## Worker (`WORKER_*`)\n",
        "A queue's tuning (its declaration) sets the slot and cache defaults; the variables "
        "override them for every queue of the process.\n",
        _table(("variable", "default", "accepts", "meaning"), _setting_rows(WorkerSettings)),
        "## Other variables\n",
        _table(
            ("variable", "default", "meaning"),
            [(f"`{v.name}`", v.default, v.meaning) for v in VARIABLES],
        ),
        "## Services\n",
        "Each service declares its own in its `settings.py`, as a `workerkit.EnvSettings` class.\n",
    ]
    for cls in _settings_classes():
        out.append(f"### `{cls.env_prefix}*` ({cls.__module__}.{cls.__name__})\n")
        out.append(_table(("variable", "default", "accepts", "meaning"), _setting_rows(cls)))
    out.append(
        "Tracing is configured by the standard OpenTelemetry variables only: on when "
        "`OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; "
        "`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_TRACES_SAMPLER` apply.\n"
    )
    return "\n".join(out)


@contextlib.contextmanager
def _columns(width: str) -> Iterator[None]:
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = width
    try:
        yield
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def _commands(
    parser: argparse.ArgumentParser, path: str
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{path} {name}")


def cli() -> str:
    """The page of every ``fleet`` command, as its ``--help`` prints it."""
    out = [
        _HEADER.format(source="the fleet command's parser (workerkit.cli.build_parser)"),
        "# The `fleet` command\n",
        "Exit codes: 0 done, 1 the server or a build is not ready, 2 bad usage (one line naming "
        "the problem), 3 refused (a deploy's gate or rollout). Development commands (the "
        "scaffold) appear where the workspace is installed, not in the images.\n",
    ]
    with _columns(HELP_COLUMNS):
        for path, parser in _commands(build_parser(), "fleet"):
            help_text = parser.format_help().rstrip()
            out.append(f"## `{path}`\n\n```text\n{help_text}\n```\n")
    return "\n".join(out)


_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.\-/]+):(?:\s|$)")


def documented_keys(text: str) -> list[tuple[str, str]]:
    """``(dotted key, description)`` for each key with a ``# --`` comment right above it."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[int, str]] = []
    doc: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == "# --" or stripped.startswith("# -- "):  # not a "# -----" banner
            doc = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if doc is not None:
                doc.append(stripped[1:].strip())
            continue
        match = _KEY.match(line)
        if not stripped or stripped.startswith("-") or match is None:
            # A blank line or a list item ends a comment: it documents no key below them.
            doc = None
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        if doc is not None:
            found.append((".".join(k for _, k in stack), " ".join(doc)))
        doc = None
    return found


def _default(values: Any, dotted: str) -> str:
    node = values
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    text = json.dumps(node, separators=(", ", ": "))
    return f"`{text}`"


def chart_values(root: Path) -> str:
    """The page of the chart's documented values."""
    text = (root / VALUES).read_text()
    values = yaml.safe_load(text)
    rows = [(f"`{key}`", _default(values, key), doc) for key, doc in documented_keys(text)]
    return "\n".join(
        [
            _HEADER.format(source=VALUES),
            "# Chart values\n",
            "Every documented key of the temporal-fleet chart's `values.yaml`, with its default. "
            "Per-queue settings: every key of `defaults` can be overridden under "
            "`queues.<name>`. `values.schema.json` rejects a wrong value before anything is "
            "rendered.\n",
            _table(("key", "default", "description"), rows),
        ]
    )


def _families() -> list[tuple[str, str, str, tuple[str, ...]]]:
    """``(name, type, help, labels)`` of every metric family in workerkit's registry."""
    import workerkit._metrics  # noqa: F401  (registers workerkit's metrics)

    found = []
    for collector in list(REGISTRY._collector_to_names):
        # describe(): every family, also one a process without a limit does not serve.
        describe = getattr(collector, "describe", collector.collect)
        for family in describe():
            if not family.name.startswith("workerkit_"):
                continue
            name = family.name + ("_total" if family.type == "counter" else "")
            labels = tuple(getattr(collector, "_labelnames", ()))
            found.append((name, family.type, family.documentation, labels))
    return sorted(set(found))


def metrics(root: Path) -> str:
    """The page of the metrics and the rules."""
    out = [
        _HEADER.format(source=f"workerkit's metrics, the queues' declared metrics and {RULES}"),
        "# Metrics and alerts\n",
        "A worker's `/metrics` serves the SDK's own metrics (`temporal_*`, Temporal's default "
        "naming: no `_total`, latencies in milliseconds; see Temporal's SDK metrics reference), "
        "the process's (`process_*`), workerkit's and each queue's own, below.\n",
        "## workerkit\n",
        _table(
            ("metric", "type", "labels", "meaning"),
            [(f"`{n}`", t, ", ".join(ls), d) for n, t, d, ls in _families()],
        ),
        "## The queues' own\n",
        "Declared on each queue (`Queue.metrics`, see [Add a metric](../how-to/add-a-metric.md)); "
        "every series also carries `namespace`, `task_queue` and `workflow_type` or "
        "`activity_type`.\n",
    ]
    rows = [
        (f"`{m.name}`", name, m.kind, ", ".join(m.labels), m.description)
        for name, queue in discover_queues().items()
        for m in queue.metrics
    ]
    out.append(_table(("metric", "queue", "type", "labels", "meaning"), rows))
    groups = yaml.safe_load((root / RULES).read_text())["groups"]
    recorded = [r for g in groups for r in g["rules"] if "record" in r]
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    out.append("## Recording rules\n")
    out.append(
        _table(
            ("series", "expression"),
            [(f"`{r['record']}`", f"`{' '.join(r['expr'].split())}`") for r in recorded],
        )
    )
    out.append("## Alerts\n")
    out.append(
        _table(
            ("alert", "severity", "for", "summary"),
            [
                (
                    f"[`{r['alert']}`](#{r['alert'].lower()})",
                    r.get("labels", {}).get("severity", ""),
                    r.get("for", ""),
                    r.get("annotations", {}).get("summary", ""),
                )
                for r in alerts
            ],
        )
    )
    for r in alerts:
        notes = r.get("annotations", {})
        out.append(f"### {r['alert']}\n")
        out.append(f"{notes.get('description', '').strip()}\n")
        if notes.get("runbook"):
            out.append(f"**What to do:** {notes['runbook'].strip()}\n")
        out.append(f"```promql\n{r['expr'].strip()}\n```\n")
    return "\n".join(out)


def pages(root: Path) -> dict[str, str]:
    """Every reference page, by its path relative to ``root``.

    Raises:
        ScaffoldError: The chart's values or rules file is not under ``root``.
    """
    for rel in (VALUES, RULES):
        if not (root / rel).is_file():
            raise ScaffoldError(f"{root / rel} does not exist")
    return {
        SETTINGS: settings(),
        CLI: cli(),
        CHART_VALUES: chart_values(root),
        METRICS: metrics(root),
    }
