"""The chart cannot drift from its sources: the queue registry and `fleet settings`; its rules
and dashboards are the only copy.

scripts/helm_sync.py (make helm-sync) generates the queue list of values.yaml and
values.schema.json from `fleet queues --json`; these tests fail whenever running it would
change anything.
"""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from helm.rendering import (
    CHART,
    ROOT,
    Helm,
    by_queue,
    helm_sync,
)


def test_chart_is_in_sync_with_the_registry() -> None:
    stale = helm_sync().sync(write=False)
    assert not stale, "run `make helm-sync`:\n" + "\n".join(stale)


def test_every_registered_queue_has_values_and_schema_entries(registry: list[Any]) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["queues"]
    names = [q.name for q in registry]
    assert sorted(values["queues"]) == names
    assert schema["propertyNames"] == {"enum": names}
    assert schema["required"] == names
    assert schema["additionalProperties"] is False
    for q in registry:
        assert values["queues"][q.name]["taskQueue"] == q.task_queue
        assert schema["properties"][q.name]["properties"]["taskQueue"] == {"const": q.task_queue}
        assert q.workflow_types, f"{q.name}: the registry lists no workflow type"
        assert values["queues"][q.name]["workflowTypes"] == list(q.workflow_types)
        assert schema["properties"][q.name]["properties"]["workflowTypes"] == {
            "const": list(q.workflow_types)
        }
        # Whether it keeps state (`keeps_state`): DATABASE_URL, migrations, the replica check.
        assert values["queues"][q.name]["keepsState"] is q.keeps_state
        assert schema["properties"][q.name]["properties"]["keepsState"] == {"const": q.keeps_state}
        assert "keepsState" in schema["properties"][q.name]["required"]


def test_worker_settings_are_the_cli_settings() -> None:
    """Each defaults.worker key is a WORKER_* variable of `fleet settings`, and every variable
    the chart does not set itself (port, shutdown timeout, bind address, Worker Deployment
    Versioning, which follows the queue's builds and workerController.enabled) has a key."""
    proc = subprocess.run(
        [sys.executable, "-m", "workerkit.cli", "settings"],
        capture_output=True,
        text=True,
        check=True,
    )
    variables = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    schema = json.loads((CHART / "values.schema.json").read_text())
    keys = schema["definitions"]["worker"]["properties"]
    as_variables = {"WORKER_" + _snake(k).upper() for k in keys}
    set_by_chart = {
        "WORKER_HTTP_PORT",
        "WORKER_SHUTDOWN_TIMEOUT",
        "WORKER_HTTP_HOST",
        "WORKER_VERSIONING",
        "WORKER_VERSIONING_BOOTSTRAP",
    }
    assert as_variables <= variables
    assert as_variables == variables - set_by_chart
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["defaults"]["worker"]
    assert set(defaults) == set(keys)


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)


def test_generator_follows_the_registry(tmp_path: Path, helm: Helm) -> None:
    chart = tmp_path / "temporal-fleet"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("files"))
    registry = tmp_path / "registry.json"

    def write_registry(*queues: tuple[str, int]) -> None:
        registry.write_text(
            json.dumps([{"name": n, "version": v, "task_queue": f"{n}-v{v}"} for n, v in queues])
        )

    write_registry(("orders", 1), ("billing", 2))
    assert helm_sync().sync(chart=chart, registry_json=registry, write=True)
    assert helm_sync().sync(chart=chart, registry_json=registry, write=False) == []
    # A registry without keeps_state (older CLIs): no queue keeps state.
    generated = yaml.safe_load((chart / "values.yaml").read_text())["queues"]
    assert {name: q["keepsState"] for name, q in generated.items()} == {
        "billing": False,
        "orders": False,
    }
    # ... and without shape: the registry's default, long-activities (never cut in-flight work).
    assert {name: q["shape"] for name, q in generated.items()} == {
        "billing": "long-activities",
        "orders": "long-activities",
    }
    docs = helm.template(chart=chart)
    assert sorted(by_queue(docs, "Deployment")) == ["billing", "orders"]
    assert (
        by_queue(docs, "Deployment")["billing"]["metadata"]["annotations"][
            "temporal-fleet/task-queue"
        ]
        == "billing-v2"
    )

    # A queue leaves the registry: until the chart is regenerated, the check says so ...
    write_registry(("billing", 2))
    stale = helm_sync().sync(chart=chart, registry_json=registry, write=False)
    assert any("values.yaml" in s for s in stale)
    assert any("values.schema.json" in s for s in stale)
    # ... and once regenerated, values naming the removed queue are rejected by helm.
    helm_sync().sync(chart=chart, registry_json=registry, write=True)
    proc = helm.template_proc(chart=chart, values=[{"queues": {"orders": {"replicas": 2}}}])
    assert proc.returncode != 0 and "orders" in proc.stderr


def test_generator_carries_each_shape_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    chart = tmp_path / "temporal-fleet"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("files"))
    registry = tmp_path / "registry.json"
    shapes = {"alpha": "short", "beta": "batch", "gamma": "long-activities"}
    registry.write_text(
        json.dumps(
            [
                {"name": n, "version": 1, "task_queue": f"{n}-v1", "shape": s}
                for n, s in shapes.items()
            ]
        )
    )
    helm_sync().sync(chart=chart, registry_json=registry, write=True)
    generated = yaml.safe_load((chart / "values.yaml").read_text())["queues"]
    assert {name: q["shape"] for name, q in generated.items()} == shapes
    schema = json.loads((chart / "values.schema.json").read_text())["properties"]["queues"]
    assert {n: q["properties"]["shape"] for n, q in schema["properties"].items()} == {
        n: {"const": s} for n, s in shapes.items()
    }
    registry.write_text(json.dumps([{"name": "solo", "task_queue": "solo-v1", "shape": "huge"}]))
    with pytest.raises(SystemExit, match="queue solo: shape 'huge' is not one of short"):
        helm_sync().registry_queues(registry)


def test_rules_and_dashboards_have_one_copy_that_every_stack_uses() -> None:
    """The chart's files/ is the only copy (Helm reads nothing outside the chart): the compose
    stack mounts it and `make prometheus` names it; no other tracked file repeats one."""
    files = CHART / "files"
    shipped = sorted(files.glob("prometheus/rules/*.y*ml")) + sorted(
        files.glob("grafana/dashboards/*.json")
    )
    assert shipped
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    contents = {p.read_bytes() for p in shipped}
    copies = [
        p
        for p in tracked
        if not p.startswith("helm/temporal-fleet/files/")
        and (ROOT / p).is_file()
        and (ROOT / p).read_bytes() in contents
    ]
    assert not copies, f"second copies of the chart's rules or dashboards: {copies}"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    mounted = {str(v).split(":")[0] for s in compose.values() for v in s.get("volumes", [])}
    assert {
        "./helm/temporal-fleet/files/prometheus/rules",
        "./helm/temporal-fleet/files/grafana/dashboards",
    } <= mounted
    rules = {p.resolve() for p in files.glob("prometheus/rules/*.yml")}
    for config in ("prometheus.yml", "prometheus-compose.yml"):
        where = ROOT / "deploy" / "prometheus"
        patterns = yaml.safe_load((where / config).read_text())["rule_files"]
        found = {Path(p).resolve() for pattern in patterns for p in glob.glob(str(where / pattern))}
        assert found == rules, config


def test_check_mode_exits_non_zero_when_stale(tmp_path: Path) -> None:
    chart = tmp_path / "temporal-fleet"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("files"))
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps([{"name": "solo", "version": 1, "task_queue": "solo-v1"}]))
    script = str(ROOT / "scripts" / "helm_sync.py")
    args = ["--chart", str(chart), "--registry-json", str(registry)]
    check = subprocess.run(
        [sys.executable, script, "--check", *args], capture_output=True, text=True
    )
    assert check.returncode == 1 and "make helm-sync" in check.stderr
    write = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
    assert write.returncode == 0, write.stderr
    check = subprocess.run(
        [sys.executable, script, "--check", *args], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_environment_files_name_only_registered_queues(registry: list[Any], env: str) -> None:
    values = yaml.safe_load((CHART / f"values-{env}.yaml").read_text()) or {}
    assert set(values.get("queues") or {}) <= {q.name for q in registry}
