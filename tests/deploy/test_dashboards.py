"""Static checks of deploy/ and the rules and dashboards it uses (their only copy is the Helm
chart's files/): generated dashboards are well-formed (that they are current is the one drift
check's, tests/tools/test_derived_files.py); rules pass promtool.

Grafana itself cannot run here; its view of the JSON is checked for what breaks dashboards
in practice (a datasource uid that does not exist, duplicate panel ids, a variable that
a query uses but nobody defines), and test_observability runs every query for real.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
GRAFANA = DEPLOY / "grafana"
FILES = DEPLOY.parent / "helm" / "temporal-fleet" / "files"
DASHBOARDS = sorted((FILES / "grafana" / "dashboards").glob("*.json"))
RULES = sorted((FILES / "prometheus" / "rules").glob("*.yml"))
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range"}


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate", GRAFANA / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


def provisioned_datasource_uid() -> str:
    config = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (datasource,) = config["datasources"]
    return str(datasource["uid"])


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_dashboard_structure(path: Path) -> None:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    uid = provisioned_datasource_uid()
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    used: set[str] = set()
    for var in dashboard["templating"]["list"]:
        assert var["datasource"]["uid"] == uid
        used |= set(re.findall(r"\$(\w+)", var["query"]))
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid
            used |= set(re.findall(r"\$(\w+)", target["expr"]))
    assert used - BUILTIN_VARIABLES <= defined, f"undefined variables: {used - defined}"
    assert defined <= used, f"variables no query uses: {defined - used}"


def promtool(*args: str) -> str:
    if shutil.which("promtool") is None:
        pytest.skip("needs promtool (.ci/run installs the prometheus package)")
    out = subprocess.run(
        ["promtool", *args],
        cwd=DEPLOY / "prometheus",
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_promtool_checks_config_and_rules() -> None:
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")
    assert RULES
    for rules in RULES:
        assert "SUCCESS" in promtool("check", "rules", str(rules))


def test_promtool_unit_tests_cover_every_alert() -> None:
    promtool("test", "rules", "tests/temporal-fleet.test.yml")
    alerts = {
        rule["alert"]
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    tests = yaml.safe_load((DEPLOY / "prometheus/tests/temporal-fleet.test.yml").read_text())
    tested = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    assert alerts <= tested, f"alerts without a firing unit test: {alerts - tested}"
