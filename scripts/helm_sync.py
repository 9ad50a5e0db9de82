"""Keep the Helm chart in step with the queue registry.

    uv run python scripts/helm_sync.py            # rewrite what is out of date (make helm-sync)
    uv run python scripts/helm_sync.py --check    # change nothing; exit 1 naming what is stale

The registry (`fleet queues --json`) is the only list of queues. From it this script writes:

- values.yaml, between the GENERATED QUEUES markers: one entry per queue with its task queue,
  its workflow types, whether it keeps state (keepsState: its workers get DATABASE_URL,
  its schema is migrated by the chart's hook, and without a database it may run one replica)
  and its shape (short, long-activities or batch: the scaling defaults the chart derives);
- values.schema.json, properties.queues: exactly those names (propertyNames, required), each
  queue's taskQueue, workflowTypes, keepsState and shape pinned with const, so `helm template`
  rejects a queue the registry lacks.

The alert rules and dashboards are not copied: the chart's files/ holds their only copy (Helm
reads no file outside the chart), which the compose stack and `make prometheus` use too.
tests/helm runs the same check, so the chart cannot drift from the registry.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "temporal-fleet"

BEGIN = "# BEGIN GENERATED QUEUES"
# The registry's default shape (workerkit Queue.shape), for a registry that lists none (older
# CLIs); tests/helm checks that the two agree.
DEFAULT_SHAPE = "long-activities"
SHAPES = ("short", "long-activities", "batch")
END = "# END GENERATED QUEUES"


@dataclass(frozen=True)
class RegisteredQueue:
    """One queue as `fleet queues --json` lists it: what the chart depends on. (Descriptions
    are left out of the generated files, so rewording a queue does not make the chart stale.)"""

    name: str
    task_queue: str
    workflow_types: tuple[str, ...] = ()
    # Whether its activities keep state in the database (`keeps_state`: it has migrations).
    keeps_state: bool = False
    # How its work behaves (`shape`): short, long-activities or batch.
    shape: str = DEFAULT_SHAPE


def registry_queues(registry_json: Path | None = None) -> list[RegisteredQueue]:
    """Read the registry: `fleet queues --json`, or a file holding that output (for tests)."""
    if registry_json is not None:
        text = registry_json.read_text()
    else:
        proc = subprocess.run(
            [sys.executable, "-m", "workerkit.cli", "queues", "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"fleet queues --json failed ({proc.returncode}): {proc.stderr}")
        text = proc.stdout
    queues = sorted(
        (
            RegisteredQueue(
                q["name"],
                q["task_queue"],
                tuple(sorted(q.get("workflows", []))),
                bool(q.get("keeps_state", False)),
                str(q.get("shape", DEFAULT_SHAPE)),
            )
            for q in json.loads(text)
        ),
        key=lambda q: q.name,
    )
    for q in queues:
        if q.shape not in SHAPES:
            raise SystemExit(f"queue {q.name}: shape {q.shape!r} is not one of {', '.join(SHAPES)}")
    return queues


def render_values(text: str, queues: Sequence[RegisteredQueue]) -> str:
    """Return values.yaml with the generated queues block rewritten."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"values.yaml lacks the markers {BEGIN!r} ... {END!r}")
    lines = [BEGIN, "queues:" if queues else "queues: {}"]
    for q in queues:
        lines += [
            f"  # -- The {q.name} queue's settings (any key of defaults).",
            f"  {q.name}:",
            "    # -- Task queue polled by the workers and watched by KEDA (from the registry).",
            f"    taskQueue: {json.dumps(q.task_queue)}",
            "    # -- Workflow types its workers register (from the registry): the ServiceMonitor",
            "    # keeps only series of these (serviceMonitor.keepRegisteredWorkflowTypesOnly).",
            f"    workflowTypes: {json.dumps(list(q.workflow_types))}",
            "    # -- Whether its activities keep state (from the registry): its workers get",
            "    # DATABASE_URL from database.existingSecret and the pre-install/pre-upgrade hook",
            "    # migrates its schema; without a database it runs at most one replica.",
            f"    keepsState: {json.dumps(q.keeps_state)}",
            "    # -- How its work behaves (from the registry): short, long-activities or batch.",
            "    # The autoscalers' defaults follow it: scale to zero, triggers, cooldown and",
            "    # scale-down policies (see autoscaling in defaults and the chart README).",
            f"    shape: {json.dumps(q.shape)}",
        ]
    return text[:start] + "\n".join(lines) + "\n" + text[end:]


def render_schema(schema: dict[str, Any], queues: Sequence[RegisteredQueue]) -> dict[str, Any]:
    """Return values.schema.json with properties.queues listing exactly ``queues``."""
    names = [q.name for q in queues]
    section = schema["properties"]["queues"]
    section["propertyNames"] = {"enum": names}
    section["required"] = names
    section["properties"] = {
        q.name: {
            "description": (
                f"Queue {q.name}, task queue {q.task_queue}"
                + (", keeps state" if q.keeps_state else "")
                + f", shape {q.shape} (from the registry)."
            ),
            "allOf": [{"$ref": "#/definitions/queue"}],
            "required": ["taskQueue", "workflowTypes", "keepsState", "shape"],
            "properties": {
                "taskQueue": {"const": q.task_queue},
                "workflowTypes": {"const": list(q.workflow_types)},
                "keepsState": {"const": q.keeps_state},
                "shape": {"const": q.shape},
            },
        }
        for q in queues
    }
    return schema


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def sync(
    *,
    chart: Path = CHART,
    registry_json: Path | None = None,
    write: bool,
) -> list[str]:
    """Bring the chart up to date (``write``) or only report; return what is/was stale."""
    stale: list[str] = []
    queues = registry_queues(registry_json)

    values_path = chart / "values.yaml"
    values = values_path.read_text()
    new_values = render_values(values, queues)
    if new_values != values:
        stale.append(f"{values_path.relative_to(chart.parent)}: queues block")
        if write:
            values_path.write_text(new_values)

    schema_path = chart / "values.schema.json"
    schema = schema_path.read_text()
    new_schema = schema_text(render_schema(json.loads(schema), queues))
    if new_schema != schema:
        stale.append(f"{schema_path.relative_to(chart.parent)}: properties.queues")
        if write:
            schema_path.write_text(new_schema)

    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report only; exit 1 if stale")
    parser.add_argument("--chart", type=Path, default=CHART)
    parser.add_argument(
        "--registry-json", type=Path, help="a saved `fleet queues --json` (default: run it)"
    )
    args = parser.parse_args(argv)
    stale = sync(chart=args.chart, registry_json=args.registry_json, write=not args.check)
    for item in stale:
        print(("stale: " if args.check else "updated: ") + item)
    if args.check and stale:
        print("run `make helm-sync` (uv run python scripts/helm_sync.py)", file=sys.stderr)
        return 1
    if not stale:
        print("chart is up to date with the registry")
    return 0


if __name__ == "__main__":
    sys.exit(main())
