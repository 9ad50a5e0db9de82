"""The fleet CLI as a user runs it, on the installed services: real processes against the real
test server (beside tests/test_replay.py and tests/test_bad_input.py, which cover every
service; tests/shared tests the library alone)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from workerkit import discover_queues

from support import WorkerProcess, fleet_cli, run_cli

# slow: each test runs fleet as a process, many against fleet worker processes.
pytestmark = pytest.mark.slow

ORDER: dict[str, Any] = {
    "customer_id": "cust-cli",
    "items": [{"sku": "sku-widget", "quantity": 1, "unit_price_cents": 999}],
    "shipping_address": {
        "name": "Grace Hopper",
        "line1": "1 Navy Way",
        "city": "Arlington",
        "postal_code": "22202",
        "country": "US",
    },
    "payment_token": "tok_visa",
    "confirmation_timeout_seconds": 60,
}


@pytest.fixture
def server_env(temporal_address: str) -> dict[str, str]:
    return {"TEMPORAL_ADDRESS": temporal_address, "TEMPORAL_NAMESPACE": "default"}


def test_queues_lists_the_registry() -> None:
    out = run_cli("queues", "--json")
    assert out.returncode == 0, out.stderr
    queues = {q["name"]: q for q in json.loads(out.stdout)}
    assert queues["orders"]["task_queue"] == "orders-v1"
    assert queues["orders"]["workflows"] == ["OrderWorkflow"]
    assert all(q["stored_histories"] > 0 for q in queues.values())  # shipped with each


def test_unknown_queue_is_a_clear_error() -> None:
    out = run_cli("worker", "payments")
    assert out.returncode == 2
    known = ", ".join(discover_queues())
    assert out.stderr.strip() == f"error: unknown queue 'payments'; known queues: {known}"


def test_worker_needs_queues_or_all() -> None:
    out = run_cli("worker")
    assert out.returncode == 2 and "pass --all" in out.stderr


def test_bad_setting_exits_2_naming_the_variable(server_env: dict[str, str]) -> None:
    out = run_cli("worker", "orders", env={**server_env, "WORKER_SHUTDOWN_TIMEOUT": "later"})
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: WORKER_SHUTDOWN_TIMEOUT='later' is invalid: expected a duration such as "
        "30s, 2m, 1h (plain numbers are seconds)"
    ]


def test_bad_tls_configuration_exits_2(server_env: dict[str, str]) -> None:
    env = {**server_env, "TEMPORAL_TLS_CLIENT_CERT_PATH": "/nonexistent/client.pem"}
    out = run_cli("worker", "orders", env=env)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: Temporal client configuration is invalid")
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["orders", "OrderWorkflow", "{not json"], "argument 1 is not valid JSON"),
        (["orders", "RefundWorkflow", "{}"], "queue 'orders' has no workflow 'RefundWorkflow'"),
        (["orders", "OrderWorkflow"], "OrderWorkflow takes 1 argument(s) (Order); got 0"),
        (["orders", "OrderWorkflow", '{"order_id": 5}'], "argument 1 does not fit Order"),
        (["billing", "X"], "unknown queue 'billing'"),
    ],
)
def test_start_rejects_bad_input(args: list[str], message: str, server_env: dict[str, str]) -> None:
    out = run_cli("start", *args, env=server_env)
    assert out.returncode == 2, out
    assert message in out.stderr and "Traceback" not in out.stderr


def test_start_wait_signal_query_update(
    spawn_worker: Callable[..., WorkerProcess], server_env: dict[str, str]
) -> None:
    spawn_worker("orders").wait_ready()
    order_id = f"cli-{uuid.uuid4().hex[:8]}"
    order = json.dumps({**ORDER, "order_id": order_id})

    started = run_cli(
        "start", "orders", "OrderWorkflow", order, "--memo", '{"source":"cli"}', env=server_env
    )
    assert started.returncode == 0, started.stderr
    first = json.loads(started.stdout)
    assert first["workflow_id"] == f"order-{order_id}" and first["started"] is True

    again = json.loads(run_cli("start", "orders", "OrderWorkflow", order, env=server_env).stdout)
    assert again["started"] is False and again["run_id"] == first["run_id"]

    rejected = run_cli(
        "update",
        f"order-{order_id}",
        "change_shipping_address",
        json.dumps({**ORDER["shipping_address"], "postal_code": " "}),
        env=server_env,
    )
    assert rejected.returncode == 1 and "postal_code is empty" in rejected.stderr

    moved = {**ORDER["shipping_address"], "city": "Washington", "postal_code": "20001"}
    updated = run_cli(
        "update", f"order-{order_id}", "change_shipping_address", json.dumps(moved), env=server_env
    )
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["shipping_address"]["city"] == "Washington"

    # Checked against the running workflow's type before anything is sent: exit 2, one line.
    for command, name, raw, message in (
        ("signal", "confirmd", ["{}"], "has no signal 'confirmd'; its signals: confirm"),
        ("signal", "confirm", ['"yes"'], "signal confirm: argument 1 does not fit Confirmation"),
        ("signal", "confirm", ["{}", "{}"], "signal confirm takes 1 argument(s) (Confirmation)"),
        ("query", "stauts", [], "has no query 'stauts'; its queries: status"),
        ("update", "change_address", ["{}"], "has no update 'change_address'"),
    ):
        refused = run_cli(command, f"order-{order_id}", name, *raw, env=server_env)
        assert refused.returncode == 2, (command, name, refused.stdout, refused.stderr)
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines
        assert f"OrderWorkflow order-{order_id}" in lines[0] or "argument" in lines[0]

    signalled = run_cli(
        "signal", f"order-{order_id}", "confirm", '{"confirmed_by": "cli"}', env=server_env
    )
    assert signalled.returncode == 0, signalled.stderr

    result = run_cli("result", f"order-{order_id}", env=server_env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["shipped_to"]["city"] == "Washington"
    status = json.loads(run_cli("query", f"order-{order_id}", "status", env=server_env).stdout)
    assert status["stage"] == "completed"


def test_start_wait_reports_failure(
    spawn_worker: Callable[..., WorkerProcess], server_env: dict[str, str]
) -> None:
    spawn_worker("--all").wait_ready()
    order = json.dumps(
        {**ORDER, "order_id": f"cli-{uuid.uuid4().hex[:8]}", "payment_token": "tok_declined"}
    )
    out = run_cli("start", "orders", "OrderWorkflow", order, "--wait", env=server_env)
    assert out.returncode == 1
    assert "failed: " in out.stderr and "was declined" in out.stderr


async def test_namespace_ensure_is_idempotent(client: Client, server_env: dict[str, str]) -> None:
    name = f"ns-{uuid.uuid4().hex[:8]}"
    created = run_cli("namespace", "ensure", name, "--retention", "3d", env=server_env)
    assert created.returncode == 0, created.stderr
    assert f"namespace {name}: created" in created.stdout
    again = run_cli("namespace", "ensure", name, "--retention", "3d", env=server_env)
    assert f"namespace {name}: unchanged" in again.stdout
    changed = run_cli("namespace", "ensure", name, "--retention", "72h", env=server_env)
    assert f"namespace {name}: unchanged" in changed.stdout  # 72h is 3d
    longer = run_cli("namespace", "ensure", name, "--retention", "10d", env=server_env)
    assert f"namespace {name}: updated" in longer.stdout
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=name)
    )
    assert described.config.workflow_execution_retention_ttl.ToTimedelta().days == 10


def test_namespace_ensure_rejects_bad_retention(server_env: dict[str, str]) -> None:
    out = run_cli("namespace", "ensure", "x", "--retention", "soon", env=server_env)
    assert out.returncode == 2 and "--retention 'soon' is not a duration" in out.stderr


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        (
            {"TEMPORAL_ADDRESS": "127.0.0.1:99999"},
            ["query", "order-x", "status"],
            "Temporal connection settings are invalid (address '127.0.0.1:99999')",
        ),
        (
            {"TEMPORAL_ADDRESS": "not a host"},
            ["query", "order-x", "status"],
            "Temporal connection settings are invalid (address 'not a host')",
        ),
        (
            {"TEMPORAL_TLS_CLIENT_KEY_PATH": "/dev/null"},
            ["query", "order-x", "status"],
            "Must have both client cert and private key or neither",
        ),
        ({}, ["query", "order-x", "status", "--connect-timeout", "abc"], "--connect-timeout 'abc'"),
        (
            {"TEMPORAL_NAMESPACE": " "},
            ["query", "order-x", "status"],
            "TEMPORAL_NAMESPACE=' ' is invalid: expected a non-empty value (or leave it unset)",
        ),
        ({}, ["start", "orders", "OrderWorkflow", "{}", "--id", ""], "--id must not be empty"),
        (
            {},
            ["start", "orders", "OrderWorkflow", '{"order_id": "\\ud800"}'],
            "argument 1 holds a lone surrogate (\\ud800)",
        ),
        (
            {},
            ["start", "orders", "OrderWorkflow", '{"a":\n  1,,}'],
            "argument 1 is not valid JSON: Expecting property name enclosed in double quotes "
            "at line 2 column 5",
        ),
        (
            {"WORKER_SHUTDOWN_TIMEOUT": "99999999999999999d"},
            ["worker", "orders"],
            "WORKER_SHUTDOWN_TIMEOUT='99999999999999999d' is invalid",
        ),
        (
            {"WORKER_HTTP_HOST": "no-such-host.invalid", "WORKER_CONNECT_TIMEOUT": "1s"},
            ["worker", "orders"],
            "WORKER_HTTP_HOST='no-such-host.invalid' WORKER_HTTP_PORT=",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    env: dict[str, str], args: list[str], message: str, server_env: dict[str, str]
) -> None:
    done = run_cli(*args, env={**server_env, "WORKER_HTTP_PORT": "0", **env})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    assert lines and lines[-1].startswith("error: ") and message in lines[-1], lines


def test_arguments_from_a_file_or_stdin(
    spawn_worker: Callable[..., WorkerProcess], server_env: dict[str, str], tmp_path: Path
) -> None:
    spawn_worker("orders").wait_ready()
    order_id = f"file-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "order.json"
    path.write_text(json.dumps({**ORDER, "order_id": order_id}))
    started = run_cli("start", "orders", "OrderWorkflow", f"@{path}", env=server_env)
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["workflow_id"] == f"order-{order_id}"
    signalled = subprocess.run(
        [fleet_cli(), "signal", f"order-{order_id}", "confirm", "-"],
        input='{"confirmed_by": "stdin"}',
        env={**os.environ, **server_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert signalled.returncode == 0, signalled.stderr
    result = run_cli("result", f"order-{order_id}", env=server_env)
    assert result.returncode == 0, result.stderr
    missing = run_cli("start", "orders", "OrderWorkflow", f"@{tmp_path}/nope.json", env=server_env)
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"error: argument 1: cannot read {tmp_path}/nope.json: No such file or directory"
    )


@pytest.mark.parametrize("name", ["", " ", "a", "has space", ".lead", "x" * 256])
def test_namespace_ensure_refuses_bad_names(name: str, server_env: dict[str, str]) -> None:
    done = run_cli("namespace", "ensure", name, env=server_env)
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"error: namespace name {name!r} is invalid")


def test_an_http_port_in_use_is_one_line_and_exit_2(server_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(
            "worker",
            "orders",
            env={**server_env, "WORKER_HTTP_HOST": "127.0.0.1", "WORKER_HTTP_PORT": str(port)},
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: WORKER_HTTP_HOST='127.0.0.1' WORKER_HTTP_PORT={port}: cannot listen there: "
        "Address already in use"
    )
