"""Versioned workers: the declared behaviors, the version from the environment, the build id."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.common import VersioningBehavior
from workerkit import ConfigurationError, Queue, SettingError
from workerkit._versioning import code_build_id, resolve_version

from support import WorkerProcess
from support.fixture_queue import FixtureWorkflow


@workflow.defn
class Undeclared:
    @workflow.run
    async def run(self) -> None:
        return None


def test_a_workflow_without_a_versioning_behavior_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="workflow Undeclared has no versioning behavior"):
        Queue(name="undeclared", workflows=[Undeclared])
    with pytest.raises(ConfigurationError, match="names FixtureWorkflow, which the queue does not"):
        Queue(
            name="stray",
            workflows=[Undeclared],
            versioning={
                Undeclared: VersioningBehavior.PINNED,
                FixtureWorkflow: VersioningBehavior.PINNED,
            },
        )


@workflow.defn(versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class DeclaredInDefn:
    @workflow.run
    async def run(self) -> None:
        return None


def test_behaviors_per_class_per_queue_or_in_the_definition() -> None:
    queue = Queue(
        name="mixed",
        workflows=[Undeclared, FixtureWorkflow, DeclaredInDefn],
        versioning={
            FixtureWorkflow: VersioningBehavior.PINNED,
            Undeclared: VersioningBehavior.PINNED,
        },
    )
    assert queue.versioning_behaviors() == {
        "Undeclared": VersioningBehavior.PINNED,
        "FixtureWorkflow": VersioningBehavior.PINNED,
        "DeclaredInDefn": VersioningBehavior.AUTO_UPGRADE,
    }
    every = Queue(name="every", workflows=[Undeclared], versioning=VersioningBehavior.AUTO_UPGRADE)
    assert every.versioning_behaviors() == {"Undeclared": VersioningBehavior.AUTO_UPGRADE}
    with pytest.raises(ConfigurationError, match="PINNED or AUTO_UPGRADE"):
        Queue(name="bad", workflows=[Undeclared], versioning=VersioningBehavior.UNSPECIFIED)


@pytest.mark.parametrize(
    ("mode", "environ", "versioned", "deployment", "build_id"),
    [
        ("auto", {}, False, "fixture", None),
        ("auto", {"TEMPORAL_WORKER_BUILD_ID": "git-1a2b"}, True, "fixture", "git-1a2b"),
        ("on", {}, True, "fixture", None),
        ("off", {"TEMPORAL_WORKER_BUILD_ID": "git-1a2b"}, False, "fixture", "git-1a2b"),
        (
            "auto",
            {"TEMPORAL_WORKER_BUILD_ID": "b2", "TEMPORAL_DEPLOYMENT_NAME": "prod/fixture"},
            True,
            "prod/fixture",
            "b2",
        ),
    ],
)
def test_version_from_the_environment(
    mode: str, environ: dict[str, str], versioned: bool, deployment: str, build_id: str | None
) -> None:
    version = resolve_version(
        queue_name="fixture", packages=("fixture", "workerkit"), mode=mode, environ=environ
    )
    assert (version.versioned, version.deployment_name) == (versioned, deployment)
    if build_id is None:
        assert version.build_id == code_build_id(("fixture", "workerkit"))
        assert version.build_id_source == "code"
    else:
        assert version.build_id == build_id


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TEMPORAL_WORKER_BUILD_ID", "has space"),
        ("TEMPORAL_WORKER_BUILD_ID", "-leading-dash"),
        ("TEMPORAL_WORKER_BUILD_ID", "x" * 300),
        ("TEMPORAL_DEPLOYMENT_NAME", "fixture.v1"),
    ],
)
def test_a_bad_version_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingError, match=f"^{variable}="):
        resolve_version(queue_name="fixture", packages=(), mode="auto", environ={variable: value})


@pytest.fixture
def package(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "site"
    (root / "buildidpkg" / "sub").mkdir(parents=True)
    (root / "buildidpkg" / "__init__.py").write_text("")
    (root / "buildidpkg" / "sub" / "__init__.py").write_text("")
    (root / "buildidpkg" / "flows.py").write_text("STEPS = 1\n")
    sys.path.insert(0, str(root))
    try:
        yield root / "buildidpkg"
    finally:
        sys.path.remove(str(root))


def test_the_code_build_id_follows_the_code(package: Path) -> None:
    first = code_build_id(("buildidpkg",))
    assert first == code_build_id(("buildidpkg",))
    assert first.startswith("code-") and len(first) == len("code-") + 12
    (package / "flows.py").write_text("STEPS = 2\n")
    changed = code_build_id(("buildidpkg",))
    assert changed != first
    (package / "flows.py").write_text("STEPS = 1\n")
    assert code_build_id(("buildidpkg",)) == first


@pytest.mark.slow
@pytest.mark.usefixtures("fixture_queue")
def test_a_worker_with_a_bad_build_id_exits_2(spawn_worker: Callable[..., WorkerProcess]) -> None:
    worker = spawn_worker("fixture", env={"TEMPORAL_WORKER_BUILD_ID": "not a build id"})
    assert worker.wait_exit() == 2
    lines = worker.log().strip().splitlines()
    assert lines[-1].startswith("error: TEMPORAL_WORKER_BUILD_ID='not a build id' is invalid")
