"""`make new-queue`: the generated queue is registered and passes its own tests at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleet_devtools import ScaffoldError, write_queue
from fleet_devtools import derived as fleet_sync
from helm.rendering import find_helm

from support import free_port, http_get
from support.processes import stop_process
from support.temporal import start_dev_server
from support.walk import shell_blocks, walk

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


@dataclass(frozen=True)
class Scaffolded:
    """A copy of the repository (a git repository of its own) after `make new-queue
    NAME=billing`."""

    root: Path
    made: str
    env: dict[str, str]

    def run(self, *cmd: str) -> str:
        out = subprocess.run(
            cmd, cwd=self.root, env=self.env, capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}"
        return out.stdout


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Scaffolded:
    assert shutil.which("uv"), "uv must be on PATH (the README's prerequisites)"
    root = repo_copy(tmp_path_factory.mktemp("scaffolded") / "repo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_", "GIT_"))}
    copy = Scaffolded(root, "", env)
    git = ("git", "-c", "user.name=test", "-c", "user.email=test@example.com")
    copy.run(*git, "init", "--quiet")
    copy.run(*git, "add", "--all")
    copy.run(*git, "commit", "--quiet", "--no-verify", "-m", "the repository before new-queue")
    return Scaffolded(root, copy.run("make", "new-queue", "NAME=billing"), env)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_generated_queue_passes_its_tests_in_a_copy_of_the_repo(scaffolded: Scaffolded) -> None:
    uv = shutil.which("uv")
    assert uv, "uv must be on PATH (the README's prerequisites)"
    root, run = scaffolded.root, scaffolded.run
    made = scaffolded.made
    assert "queue billing: registered (billing " in made
    assert (root / "services/billing/src/billing/histories/recorded/processed.json").exists()
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


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_new_queue_changes_no_file_but_its_own_and_the_derived_ones(
    scaffolded: Scaffolded,
) -> None:
    status = scaffolded.run("git", "status", "--porcelain", "--untracked-files=all")
    changed = {line[3:]: line[:2] for line in status.splitlines()}
    added = {path for path, how in changed.items() if how == "??"}
    modified = {path for path, how in changed.items() if how != "??"}
    own = ("services/billing/", "tests/services/billing/")
    assert added and all(path.startswith(own) for path in added), sorted(added)
    assert "services/billing/src/billing/queue.py" in added
    assert any(path.startswith("services/billing/src/billing/histories/") for path in added)
    # Of the files that existed, only the derived ones change (and uv's lock, which gains the
    # new workspace member): no hand-written infrastructure file is rewritten.
    derived = set(fleet_sync.FROM_REGISTRY)
    assert modified == {*derived, "uv.lock"}, sorted(modified)
    for rel in derived:
        assert "billing" in (scaffolded.root / rel).read_text(), rel
    checked = scaffolded.run(
        "uv", "run", "--frozen", "python", "-m", "fleet_devtools.derived", "--check"
    )
    assert "up to date" in checked
    # The chart lints in every environment with the new queue, prod's pinned images included.
    helm_tools = {"HELM_TOOLS_DIR": str(Path(find_helm()).parent)}
    linted = Scaffolded(scaffolded.root, "", scaffolded.env | helm_tools).run("make", "helm-lint")
    assert linted.count("0 chart(s) failed") == 3, linted


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_first_queue_tutorial_runs_as_written(scaffolded: Scaffolded, tmp_path: Path) -> None:
    # After the tests above: its pytest runs leave files in the copy, outside the queue's own.
    page = scaffolded.root / "docs" / "tutorials" / "first-queue.md"
    provided = [b.text.strip() for b in shell_blocks(page) if b.mode == "provided"]
    assert provided == ["make new-queue NAME=billing"], "the fixture ran exactly that"
    env = {k: v for k, v in scaffolded.env.items() if k != "DATABASE_URL"} | {
        "UV_FROZEN": "1",
        "WORKER_STATE_DIR": str(tmp_path),
    }
    # What `make dev` runs, from the copy (its workers know billing): a dev server, the
    # services' database migrated, every queue's worker in one process.
    port, worker_port = free_port(), free_port()
    server = start_dev_server(port)
    fleet = str(scaffolded.root / ".venv" / "bin" / "fleet")
    dev = env | {"TEMPORAL_ADDRESS": f"127.0.0.1:{port}", "WORKER_HTTP_PORT": str(worker_port)}
    worker: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run([fleet, "db", "migrate"], env=dev, check=True, capture_output=True)
        with (tmp_path / "make-dev.log").open("wb") as log:
            worker = subprocess.Popen(
                [fleet, "worker", "--all"],
                env=dev | {"WORKER_WORKFLOW_SANDBOX": "true", "WORKER_LOG_FORMAT": "text"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while http_get(f"http://127.0.0.1:{worker_port}/readyz")[0] != 200:
            assert time.monotonic() < deadline, (tmp_path / "make-dev.log").read_text()
            time.sleep(0.5)
        out = walk(page, cwd=scaffolded.root, env=env, ports={7233: port, 9000: worker_port})
    finally:
        if worker is not None:
            stop_process(worker)
        stop_process(server)
    assert "billing-v1" in out  # fleet queues lists it
    assert '"processed: hello"' in out  # the result the page names
    assert " passed" in out and "failed" not in out  # its tests, then after new histories


@pytest.mark.parametrize("name", ["q", "abcdefghijklmnopqrstuvwxyzabcd"], ids=["1 letter", "30"])
def test_a_queue_of_any_name_length_is_generated_lint_clean(tmp_path: Path, name: str) -> None:
    # The repository's ruff settings (line length, import sections) in a root of its own.
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    write_queue(name, tmp_path)
    ruff = shutil.which("ruff")
    assert ruff, "ruff must be on PATH (uv run)"
    for check in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [ruff, *check, "services", "tests"], cwd=tmp_path, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
