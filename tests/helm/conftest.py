"""Fixtures of the Helm chart tests: the real helm, rendered environments, the registry, and a
copy of the chart generated for a made-up two-queue registry."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fleet_devtools import derived as fleet_sync
from helm.rendering import (
    FIXTURE_DEPLOY,
    FIXTURE_REGISTRY,
    Doc,
    Helm,
    chart_for,
    find_helm,
)


@pytest.fixture(scope="session")
def helm() -> Helm:
    """helm: $HELM, else on PATH, else installed by scripts/helm-tools.sh (or fail saying why)."""
    return Helm(find_helm())


@pytest.fixture(scope="session")
def rendered(helm: Helm) -> Callable[[str], list[Doc]]:
    """The objects of one environment (release fleet-<env> in namespace fleet-<env>), cached."""
    cached: dict[str, list[Doc]] = {}

    def render(env: str) -> list[Doc]:
        if env not in cached:
            cached[env] = helm.template(env)
        return cached[env]

    return render


@pytest.fixture(scope="session")
def registry() -> list[Any]:
    """The registered queues (RegisteredQueue objects, as the chart's queue list is made of)."""
    queues: list[Any] = fleet_sync.registry()
    assert queues, "no queue is registered"
    return queues


@pytest.fixture(scope="session")
def fixture_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the chart generated for FIXTURE_REGISTRY, with tests/helm/fixtures/deploy's
    alert rules and dashboard as its files/ (the chart's own rules and dashboards)."""
    chart = chart_for(tmp_path_factory.mktemp("fixture-chart"), FIXTURE_REGISTRY)
    shutil.copytree(FIXTURE_DEPLOY, chart / "files", dirs_exist_ok=True)
    return chart
