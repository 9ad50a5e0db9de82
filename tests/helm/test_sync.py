"""The chart cannot drift from its sources: the queue registry and `fleet settings`; its rules
and dashboards are the only copy.

`make sync` (python -m fleet_devtools.derived) writes the chart's queue list, files/queues.yaml,
from the registry; values.yaml and values.schema.json are written by hand. These tests fail
whenever running it would change anything.
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

from fleet_devtools import derived as fleet_sync
from fleet_devtools import reference
from helm.rendering import (
    CHART,
    ROOT,
    Helm,
    by_queue,
    chart_for,
)

RegisteredQueue = fleet_sync.RegisteredQueue
# slow: the generator and helm run as processes.
pytestmark = pytest.mark.slow


def test_every_registered_queue_is_in_the_chart_with_its_registry_fields(
    registry: list[Any], helm: Helm
) -> None:
    generated = yaml.safe_load((CHART / "files" / "queues.yaml").read_text())
    names = [q.name for q in registry]
    assert sorted(generated) == names
    for q in registry:
        assert generated[q.name]["taskQueue"] == q.task_queue
        assert q.workflow_types, f"{q.name}: the registry lists no workflow type"
        assert generated[q.name]["workflowTypes"] == list(q.workflow_types)
        # Whether it keeps state (`keeps_state`): DATABASE_URL, migrations, the replica check.
        assert generated[q.name]["keepsState"] is q.keeps_state
    # The hand-written files name no queue: values hold overrides only, the schema any name
    # (the chart refuses one the registry lacks, and a registry field changed).
    assert yaml.safe_load((CHART / "values.yaml").read_text())["queues"] == {}
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["queues"]
    assert "properties" not in schema and "required" not in schema
    assert schema["additionalProperties"] == {"$ref": "#/definitions/queue"}
    # Every registered queue runs, with its task queue.
    deployments = by_queue(helm.template(), "Deployment")
    assert sorted(deployments) == names
    for q in registry:
        annotations = deployments[q.name]["metadata"]["annotations"]
        assert annotations["temporal-fleet/task-queue"] == q.task_queue
    for key, value in (("taskQueue", "other-v1"), ("workflowTypes", ["Other"])):
        proc = helm.template_proc(values=[{"queues": {names[0]: {key: value}}}])
        assert proc.returncode != 0 and f"queues.{names[0]}.{key}" in proc.stderr


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
    root = tmp_path / "repo"
    shutil.copytree(CHART, root / "helm" / "temporal-fleet", ignore=shutil.ignore_patterns("files"))
    shutil.copy(ROOT / "docker-compose.yml", root / "docker-compose.yml")
    # The docs' reference pages, derived files too, read the chart's rules.
    rules = root / reference.RULES
    rules.parent.mkdir(parents=True)
    shutil.copy(ROOT / reference.RULES, rules)
    for name in ("orders", "billing"):
        (root / "services" / name).mkdir(parents=True)
    chart = root / "helm" / "temporal-fleet"
    # Neither keeps_state nor shape given: no state, the registry's default shape.
    both = [RegisteredQueue("orders", "orders-v1"), RegisteredQueue("billing", "billing-v2")]
    assert fleet_sync.sync(root, both, write=True)
    assert fleet_sync.sync(root, both, write=False) == []
    generated = yaml.safe_load((chart / "files" / "queues.yaml").read_text())
    assert {name: q["keepsState"] for name, q in generated.items()} == {
        "billing": False,
        "orders": False,
    }
    # ... the registry's default, long-activities (never cut in-flight work).
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
    billing = [RegisteredQueue("billing", "billing-v2")]
    assert fleet_sync.CHART_QUEUES in fleet_sync.sync(root, billing, write=False)
    # ... and once regenerated, values naming the removed queue are rejected by helm.
    fleet_sync.sync(root, billing, write=True)
    proc = helm.template_proc(chart=chart, values=[{"queues": {"orders": {"replicas": 2}}}])
    assert proc.returncode != 0 and "orders" in proc.stderr


def test_a_declared_gate_workflow_is_the_controllers_gate(tmp_path: Path, helm: Helm) -> None:
    queues = [RegisteredQueue("alpha", "alpha-v1", gate_workflow="AlphaSmoke")]
    queues.append(RegisteredQueue("beta", "beta-v1"))
    chart = chart_for(tmp_path, queues)
    generated = yaml.safe_load((chart / "files" / "queues.yaml").read_text())
    assert generated["alpha"]["gateWorkflowType"] == "AlphaSmoke"
    assert "gateWorkflowType" not in generated["beta"]
    docs = helm.template(chart=chart, values=[{"workerController": {"enabled": True}}])
    gates = {
        d["metadata"]["labels"]["temporal-fleet/queue"]: d["spec"]["rollout"].get("gate")
        for d in docs
        if d["kind"] == "WorkerDeployment"
    }
    assert gates == {"alpha": {"workflowType": "AlphaSmoke"}, "beta": None}
    # The values still decide over the registry.
    own = {"queues": {"alpha": {"rollout": {"controller": {"gateWorkflowType": "Other"}}}}}
    docs = helm.template(chart=chart, values=[{"workerController": {"enabled": True}}, own])
    (alpha,) = [
        d
        for d in docs
        if d["kind"] == "WorkerDeployment"
        and d["metadata"]["labels"]["temporal-fleet/queue"] == "alpha"
    ]
    assert alpha["spec"]["rollout"]["gate"] == {"workflowType": "Other"}


def test_generator_carries_each_shape_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    shapes = {"alpha": "short", "beta": "batch", "gamma": "long-activities"}
    chart = chart_for(tmp_path, [RegisteredQueue(n, f"{n}-v1", shape=s) for n, s in shapes.items()])
    generated = yaml.safe_load((chart / "files" / "queues.yaml").read_text())
    assert {name: q["shape"] for name, q in generated.items()} == shapes
    with pytest.raises(ValueError, match="queue solo: shape 'huge' is not one of short"):
        RegisteredQueue("solo", "solo-v1", shape="huge")


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


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_environment_files_name_only_registered_queues(registry: list[Any], env: str) -> None:
    values = yaml.safe_load((CHART / f"values-{env}.yaml").read_text()) or {}
    assert set(values.get("queues") or {}) <= {q.name for q in registry}
