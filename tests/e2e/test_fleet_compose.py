"""scripts/fleet_compose.py, the compose stack's commands (make up | down | logs | ps | scale |
images), and scripts/compose_stack/, what they, make deploy and the e2e share: what it decides
from `docker inspect` documents and the compose files, without Docker (one test reads the
config through the installed compose, when an engine answers).
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet_devtools import derived as fleet_sync

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import fleet_compose  # noqa: E402
from compose_stack.containers import (  # noqa: E402
    ONE_SHOT,
    ROLE_LABEL,
    SERVICE_LABEL,
    WORKER,
    service_role,
)
from compose_stack.health import waiting_on  # noqa: E402
from compose_stack.process import Failed  # noqa: E402
from compose_stack.secrets import ensure_secrets  # noqa: E402
from compose_stack.stack import COMPOSE_FILES, Stack  # noqa: E402


def container(
    name: str,
    status: str = "running",
    *,
    role: str | None = None,
    health: str | None = None,
    exit_code: int = 0,
) -> dict[str, Any]:
    """A `docker inspect` document, the fields the wait reads."""
    state: dict[str, Any] = {"Status": status, "Running": status == "running"}
    state["ExitCode"] = exit_code
    if health:
        state["Health"] = {"Status": health}
    labels = {SERVICE_LABEL: name, **({ROLE_LABEL: role} if role else {})}
    return {"Name": f"/p_{name}_1", "State": state, "Config": {"Labels": labels}}


def test_the_wait_reads_states_health_and_roles() -> None:
    ready = [
        container("temporal", health="healthy"),
        container("postgres-exporter"),  # no health check: running is enough
        container("orders", role=WORKER, health="healthy"),
        container("namespace-init", "exited", role=ONE_SHOT),
    ]
    assert waiting_on(ready) == ([], [])
    pending, failed = waiting_on(
        [
            container("orders", role=WORKER, health="starting"),
            container("prometheus", "restarting"),
            container("grafana", "exited", exit_code=0),  # only a one-shot may be done
            container("orders-migrate", "running", role=ONE_SHOT),
            container("agent-migrate", "exited", role=ONE_SHOT, exit_code=1),
        ]
    )
    assert pending == [
        "p_orders_1(running/starting)",
        "p_prometheus_1(restarting/down)",
        "p_grafana_1(exited/down)",
        "p_orders-migrate_1(running)",
    ]
    assert failed == ["p_agent-migrate_1"]


def test_roles_come_from_the_compose_files_labels() -> None:
    """Workers and one-shots are labelled in docker-compose.yml's templates: no service name
    is written in the tooling. A one-shot is a service compose does not restart."""
    hand_written = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = {
        **hand_written["services"],
        **yaml.safe_load((ROOT / "docker-compose.queues.yml").read_text())["services"],
    }
    one_shots = {name for name, s in services.items() if service_role(s) == ONE_SHOT}
    assert one_shots and one_shots == {n for n, s in services.items() if s.get("restart") == "no"}
    assert service_role({"labels": [f"{ROLE_LABEL}={WORKER}", "other=1"]}) == WORKER
    assert service_role({}) == ""


def test_the_stack_is_named_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COMPOSE_PROJECT_NAME", "FLEET_COMPOSE_FILES", "FLEET_SECRETS_DIR"):
        monkeypatch.delenv(name, raising=False)
    stack = Stack.from_env()
    assert (stack.project, stack.files) == ("temporal-fleet", COMPOSE_FILES)
    assert stack.files == ("docker-compose.yml", "docker-compose.queues.yml")
    assert stack.secrets_dir == ROOT / ".data" / "compose" / "secrets"
    assert stack.builds_file == ROOT / ".data" / "compose" / "temporal-fleet.builds.yml"
    other = Stack.from_env(
        {"COMPOSE_PROJECT_NAME": "e2e", "FLEET_COMPOSE_FILES": "a.yml:b.yml", "FLEET_UI_PORT": ""}
    )
    assert (other.project, other.files) == ("e2e", ("a.yml", "b.yml"))
    assert other.var("FLEET_UI_PORT", "8233") == "8233"  # empty is unset, as ${VAR:-default}


def test_secrets_are_written_once(tmp_path: Path) -> None:
    stack = Stack.from_env({"FLEET_SECRETS_DIR": str(tmp_path / "secrets")})
    ensure_secrets(stack.secrets_dir, "secrets")
    keys = (tmp_path / "secrets" / "encryption-keys").read_text()
    token = (tmp_path / "secrets" / "codec-token").read_text()
    key_id, _, key = keys.strip().partition(":")
    assert key_id.startswith("k") and len(base64.b64decode(key)) == 32
    assert len(token.strip()) >= 32
    for name in ("encryption-keys", "codec-token"):
        assert (tmp_path / "secrets" / name).stat().st_mode & 0o777 == 0o644
    ensure_secrets(stack.secrets_dir, "secrets")
    assert (tmp_path / "secrets" / "encryption-keys").read_text() == keys
    assert (tmp_path / "secrets" / "codec-token").read_text() == token


def test_an_unknown_command_prints_the_usage() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fleet_compose.py"), "start"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "[compose] error:\x1b[0m usage: scripts/fleet_compose.py images|up|" in done.stderr


@pytest.mark.parametrize("command", [*fleet_compose.COMMANDS, None])
def test_help_needs_no_docker(
    command: str | None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`COMMAND --help` prints its usage and runs nothing (no Docker is asked)."""
    monkeypatch.setenv("PATH", "")
    assert fleet_compose.main([command, "--help"] if command else ["--help"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"usage: scripts/fleet_compose.py {command or 'COMMAND'}")


def test_the_config_read_through_compose_has_the_roles(tmp_path: Path) -> None:
    stack = Stack.from_env(
        {
            "COMPOSE_PROJECT_NAME": "fleet-compose-test",
            "FLEET_COMPOSE_FILES": "",
            "FLEET_SECRETS_DIR": str(tmp_path),
        }
    )
    try:
        stack.command()
    except Failed as err:
        pytest.skip(str(err))
    services = stack.config()["services"]
    workers = {n for n, s in services.items() if service_role(s) == WORKER}
    one_shots = {n for n, s in services.items() if service_role(s) == ONE_SHOT}
    queues = fleet_sync.registry()
    assert workers == {q.name for q in queues}
    assert one_shots == {"namespace-init", *(f"{q.name}-migrate" for q in queues if q.keeps_state)}
