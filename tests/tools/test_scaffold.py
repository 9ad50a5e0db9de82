"""`make new-queue`: the generated queue is registered and passes its own tests at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fleet_scaffold import ScaffoldError, write_queue

REPO = Path(__file__).resolve().parents[2]


def tree(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*"))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("orders", "already exists"),
        ("Billing", "not a valid queue name"),
        ("bill_ing", "not a valid queue name"),
        ("9lives", "not a valid queue name"),
        ("lambda", "Python keyword"),
        ("match", "Python keyword"),
        ("json", "reserved"),
        ("workerkit", "reserved"),
        ("pytest", "shadow the installed module"),
    ],
)
def test_bad_names_write_nothing(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "services" / "orders").mkdir(parents=True)
    before = tree(tmp_path)
    with pytest.raises(ScaffoldError, match=message):
        write_queue(name, tmp_path)
    assert tree(tmp_path) == before


@pytest.mark.slow
def test_bad_name_through_the_cli_exits_2() -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "fleet"), "new-queue", "Bad-Name"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2 and out.stderr.startswith("error: 'Bad-Name' is not a valid")


def repo_copy(dest: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, files):
        source = REPO / rel
        if source.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_generated_queue_passes_its_tests_in_a_copy_of_the_repo(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv, "uv must be on PATH (the README's prerequisites)"
    root = repo_copy(tmp_path / "repo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}

    def run(*cmd: str) -> str:
        out = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
        assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}"
        return out.stdout

    made = run("make", "new-queue", "NAME=billing")
    assert "queue billing: registered (billing " in made
    assert (root / "tests/histories/billing/processed.json").exists()
    assert "billing-v1" in run(uv, "run", "--frozen", "fleet", "queues")
    tested = run(
        uv,
        "run",
        "--frozen",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/services/billing",
        "tests/test_replay.py",
    )
    assert "failed" not in tested and " passed" in tested
    run(uv, "run", "--frozen", "ruff", "check", "services/billing", "tests/services/billing")
    run(
        uv,
        "run",
        "--frozen",
        "ruff",
        "format",
        "--check",
        "services/billing",
        "tests/services/billing",
    )
    run(uv, "run", "--frozen", "mypy", "-p", "billing")
