"""The chart cannot drift from its sources: the queue registry, `fleet settings`, and deploy/.

scripts/helm_sync.py (make helm-sync) generates the queue list of values.yaml and
values.schema.json from `fleet queues --json` and copies deploy/'s alert rules and dashboards
into the chart; these tests fail whenever running it would change anything.
"""

from __future__ import annotations

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
    FIXTURE_DEPLOY,
    FIXTURE_REGISTRY,
    ROOT,
    Helm,
    by_queue,
    helm_sync,
)

# slow: the generator and helm run as processes.
pytestmark = pytest.mark.slow


def test_chart_is_in_sync_with_registry_and_deploy() -> None:
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
    deploy = tmp_path / "deploy"  # no deploy/ yet: nothing copied, nothing stale
    registry = tmp_path / "registry.json"

    def write_registry(*queues: tuple[str, int]) -> None:
        registry.write_text(
            json.dumps([{"name": n, "version": v, "task_queue": f"{n}-v{v}"} for n, v in queues])
        )

    write_registry(("orders", 1), ("billing", 2))
    assert helm_sync().sync(chart=chart, deploy=deploy, registry_json=registry, write=True)
    assert helm_sync().sync(chart=chart, deploy=deploy, registry_json=registry, write=False) == []
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
    stale = helm_sync().sync(chart=chart, deploy=deploy, registry_json=registry, write=False)
    assert any("values.yaml" in s for s in stale)
    assert any("values.schema.json" in s for s in stale)
    # ... and once regenerated, values naming the removed queue are rejected by helm.
    helm_sync().sync(chart=chart, deploy=deploy, registry_json=registry, write=True)
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
    helm_sync().sync(chart=chart, deploy=tmp_path / "deploy", registry_json=registry, write=True)
    generated = yaml.safe_load((chart / "values.yaml").read_text())["queues"]
    assert {name: q["shape"] for name, q in generated.items()} == shapes
    schema = json.loads((chart / "values.schema.json").read_text())["properties"]["queues"]
    assert {n: q["properties"]["shape"] for n, q in schema["properties"].items()} == {
        n: {"const": s} for n, s in shapes.items()
    }
    registry.write_text(json.dumps([{"name": "solo", "task_queue": "solo-v1", "shape": "huge"}]))
    with pytest.raises(SystemExit, match="queue solo: shape 'huge' is not one of short"):
        helm_sync().registry_queues(registry)


def test_generator_copies_deploy_files_and_removes_stale_ones(tmp_path: Path) -> None:
    chart = tmp_path / "temporal-fleet"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("files"))
    deploy = tmp_path / "deploy"
    shutil.copytree(FIXTURE_DEPLOY, deploy)
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps(FIXTURE_REGISTRY))

    def sync(write: bool) -> list[str]:
        stale: list[str] = helm_sync().sync(
            chart=chart, deploy=deploy, registry_json=registry, write=write
        )
        return [s for s in stale if s.startswith("temporal-fleet/files/")]

    stale = sync(write=True)
    copied = sorted(p.relative_to(chart).as_posix() for p in (chart / "files").rglob("*.*"))
    assert copied == [
        "files/grafana/dashboards/fleet-overview.json",
        "files/prometheus/rules/queues.yaml",
        "files/prometheus/rules/workers.yml",
    ]
    assert len(stale) == len(copied)
    for path in copied:
        source = deploy / Path(path).relative_to("files")
        assert (chart / path).read_bytes() == source.read_bytes()

    # Edited in deploy/, removed from deploy/: the check notices both; a sync repairs both.
    (deploy / "prometheus" / "rules" / "workers.yml").write_text("groups: []\n")
    (deploy / "grafana" / "dashboards" / "fleet-overview.json").unlink()
    assert len(sync(write=False)) == 2
    sync(write=True)
    assert not (chart / "files" / "grafana" / "dashboards" / "fleet-overview.json").exists()
    assert helm_sync().sync(chart=chart, deploy=deploy, registry_json=registry, write=False) == []


def test_check_mode_exits_non_zero_when_stale(tmp_path: Path) -> None:
    chart = tmp_path / "temporal-fleet"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("files"))
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps([{"name": "solo", "version": 1, "task_queue": "solo-v1"}]))
    script = str(ROOT / "scripts" / "helm_sync.py")
    args = ["--chart", str(chart), "--deploy", str(tmp_path / "deploy")]
    args += ["--registry-json", str(registry)]
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
