"""Checkov's Kubernetes policies on the rendered manifests of every environment, and of prod with
the codec server (which no environment enables yet): every failed check is one of
tests/helm/checkov-skips.yaml, each with its reason, and every listed check still fails
somewhere (no stale skip)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from helm.rendering import CODEC_SERVER, ENVIRONMENTS, Helm

# slow: helm renders the chart and checkov checks it.
pytestmark = pytest.mark.slow

SKIPS = Path(__file__).resolve().parent / "checkov-skips.yaml"


def _checkov() -> list[str]:
    found = shutil.which("checkov", path=str(Path(sys.executable).parent))
    assert found, "checkov is a dev dependency: uv sync"
    return [found]


def _failed_checks(directory: Path) -> tuple[dict[str, set[str]], int]:
    proc = subprocess.run(
        [
            *_checkov(),
            "--directory",
            str(directory),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--quiet",
            "--compact",
            # Offline: no guidelines, severities or policies from Prisma Cloud.
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Exit 1 means failed checks; anything else is checkov itself failing.
    assert proc.returncode in (0, 1), proc.stderr
    reports: Any = json.loads(proc.stdout)
    if isinstance(reports, dict):
        reports = [reports]
    failed: dict[str, set[str]] = {}
    passed = 0
    for report in reports:
        passed += report["summary"]["passed"]
        for check in report["results"]["failed_checks"]:
            where = f"{check['file_path'].lstrip('/')}: {check['resource']}"
            failed.setdefault(check["check_id"], set()).add(where)
    return failed, passed


def test_skip_list_gives_every_reason() -> None:
    skips = yaml.safe_load(SKIPS.read_text())["skips"]
    assert skips
    for check_id, entry in skips.items():
        assert check_id.startswith("CKV_K8S_"), check_id
        assert entry["name"].strip() and len(entry["why"].split()) >= 10, check_id


def test_rendered_manifests_pass_checkov(helm: Helm, tmp_path: Path) -> None:
    for env in ENVIRONMENTS:
        proc = helm.template_proc(env)
        assert proc.returncode == 0, proc.stderr
        (tmp_path / f"{env}.yaml").write_text(proc.stdout)
    # The codec server is off in every environment: checked in prod, switched on.
    proc = helm.template_proc("prod", values=[CODEC_SERVER])
    assert proc.returncode == 0, proc.stderr
    assert "kind: NetworkPolicy" in proc.stdout and "codec-server" in proc.stdout
    (tmp_path / "prod-codec-server.yaml").write_text(proc.stdout)
    failed, passed = _failed_checks(tmp_path)
    assert passed > 100, "checkov ran almost no check: did it parse the manifests?"
    skips = set(yaml.safe_load(SKIPS.read_text())["skips"])
    unjustified = {c: sorted(w) for c, w in failed.items() if c not in skips}
    assert not unjustified, "failed checks not in checkov-skips.yaml:\n" + json.dumps(
        unjustified, indent=1
    )
    stale = skips - set(failed)
    assert not stale, f"listed in checkov-skips.yaml but no longer failing: {sorted(stale)}"
