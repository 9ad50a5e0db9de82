"""Payload encryption on the real dev server: what Temporal stores is only ciphertext.

The official `temporal` CLI reads the raw history (it has no key); `fleet` and the workers
hold the keyring and see plaintext. Rotation keeps old histories readable; a payload whose key
is gone fails its workflow task visibly, naming the key id, and the worker keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from workerkit import data_converter
from workerkit._encryption import EncryptionCodec, load_keyring, new_key

from support import WorkerProcess, fleet_cli, free_port, http_get, run_cli, temporal_run
from support.fixture_queue import FixtureWorkflow

# slow: fleet worker, codec server and CLI processes. The workers run the fixture queue.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fixture_queue")]

K1, K2, K3 = new_key("k1"), new_key("k2"), new_key("k3")
RECIPIENT = "Ada Lovelace"
STREET = "12 St James Sq"
SECRET_TOKEN = "tok_visa"


def parcel(parcel_id: str) -> str:
    return json.dumps(
        {
            "parcel_id": parcel_id,
            "recipient": RECIPIENT,
            "address": f"{STREET}, London SW1Y 4JH",
            "token": SECRET_TOKEN,
            "units": 1,
        }
    )


def awaiting_approval(workflow_id: str, env: dict[str, str]) -> dict[str, Any]:
    """Query the parcel (``fleet query``, with ``env``'s keys) until it awaits approval."""
    deadline = time.monotonic() + 20
    while True:
        status = run_cli("query", workflow_id, "status", env=env)
        if status.returncode == 0 and json.loads(status.stdout)["stage"] == "awaiting_approval":
            return dict(json.loads(status.stdout))
        assert time.monotonic() < deadline, status.stdout + status.stderr
        time.sleep(0.2)


def raw_history(address: str, workflow_id: str) -> str:
    shown = temporal_run(address, "workflow", "show", "-w", workflow_id, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def key_ids(raw: str) -> set[str]:
    """The encryption-key-id of every payload in a raw history."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            meta = node.get("metadata")
            if isinstance(meta, dict) and "encryption-key-id" in meta:
                found.add(base64.b64decode(meta["encryption-key-id"]).decode())
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(raw))
    return found


def test_histories_hold_only_ciphertext_and_keys_rotate(
    spawn_worker: Callable[..., WorkerProcess], temporal_address: str
) -> None:
    env = {"TEMPORAL_ADDRESS": temporal_address, "TEMPORAL_NAMESPACE": "default"}
    k1 = {**env, "FLEET_ENCRYPTION_KEYS": K1}
    worker = spawn_worker("fixture", env={"FLEET_ENCRYPTION_KEYS": K1})
    worker.wait_ready()
    parcel_id = f"enc-{uuid.uuid4().hex[:8]}"
    workflow_id = f"parcel-{parcel_id}"
    assert run_cli("start", "fixture", "FixtureWorkflow", parcel(parcel_id), env=k1).returncode == 0
    status = awaiting_approval(workflow_id, k1)
    assert status["recipient"] == RECIPIENT

    raw = raw_history(temporal_address, workflow_id)
    for plaintext in (SECRET_TOKEN, RECIPIENT, STREET):  # every private field
        assert plaintext not in raw, plaintext
    assert base64.b64encode(b"binary/encrypted").decode() in raw
    assert key_ids(raw) == {"k1"}

    # Rotation: k2 first, k1 still listed. The running parcel, written with k1, goes on.
    worker.signal()
    assert worker.wait_exit() == 0
    rotated = spawn_worker("fixture", env={"FLEET_ENCRYPTION_KEYS": f"{K2},{K1}"})
    rotated.wait_ready()
    k21 = {**env, "FLEET_ENCRYPTION_KEYS": f"{K2},{K1}"}
    signalled = run_cli("signal", workflow_id, "approve", '{"approved_by": "enc"}', env=k21)
    assert signalled.returncode == 0, signalled.stderr
    result = run_cli("result", workflow_id, env=k21)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["shipped_to"] == RECIPIENT
    final = raw_history(temporal_address, workflow_id)
    assert key_ids(final) == {"k1", "k2"}
    # The encrypted history replays on today's code with the keyring (as the gate does).
    replayer = Replayer(
        workflows=[FixtureWorkflow],
        data_converter=data_converter({"FLEET_ENCRYPTION_KEYS": f"{K2},{K1}"}),
    )
    history = WorkflowHistory.from_json(workflow_id, final)
    replayed = asyncio.run(replayer.replay_workflow(history, raise_on_replay_failure=False))
    assert replayed.replay_failure is None, replayed.replay_failure

    # Without the key the result was written with, the CLI names it in one line.
    missing = run_cli("result", workflow_id, env={**env, "FLEET_ENCRYPTION_KEYS": K3})
    assert missing.returncode == 1, missing.stderr
    assert missing.stderr.strip().splitlines() == [
        "error: payload encrypted with key 'k2', which the keyring does not hold (keys: k3); "
        "add it to FLEET_ENCRYPTION_KEYS"
    ]


async def test_a_missing_key_fails_the_workflow_task_and_the_worker_keeps_serving(
    spawn_worker: Callable[..., WorkerProcess], temporal_address: str
) -> None:
    env = {"TEMPORAL_ADDRESS": temporal_address, "TEMPORAL_NAMESPACE": "default"}
    parcel_id = f"enc-missing-{uuid.uuid4().hex[:8]}"
    workflow_id = f"parcel-{parcel_id}"
    started = run_cli(
        "start",
        "fixture",
        "FixtureWorkflow",
        parcel(parcel_id),
        env={**env, "FLEET_ENCRYPTION_KEYS": K1},
    )
    assert started.returncode == 0, started.stderr
    worker = spawn_worker("fixture", env={"FLEET_ENCRYPTION_KEYS": K3})
    worker.wait_ready()
    deadline = time.monotonic() + 30
    while True:
        events = json.loads(raw_history(temporal_address, workflow_id)).get("events", [])
        failed = [e for e in events if "workflowTaskFailedEventAttributes" in e]
        if failed:
            break
        assert time.monotonic() < deadline, events
        await asyncio.sleep(0.3)
    failure = failed[0]["workflowTaskFailedEventAttributes"]["failure"]
    # The failure's message is itself encrypted (with the worker's key): decode it.
    assert failure["message"] == "Encoded failure"
    attrs = failure["encodedAttributes"]
    sealed = Payload(
        metadata={k: base64.b64decode(v) for k, v in attrs["metadata"].items()},
        data=base64.b64decode(attrs["data"]),
    )
    keyring = load_keyring({"FLEET_ENCRYPTION_KEYS": K3})
    assert keyring is not None
    (plain,) = await EncryptionCodec(keyring).decode([sealed])
    message = json.loads(plain.data)["message"]
    assert "payload encrypted with key 'k1', which the keyring does not hold" in message
    assert worker.proc.poll() is None
    assert http_get(worker.url("/readyz")) == (200, "polling\n")
    terminated = temporal_run(temporal_address, "workflow", "terminate", "-w", workflow_id)
    assert terminated.returncode == 0, terminated.stderr


def test_a_malformed_keyring_exits_2_without_printing_key_material(
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    short = "k9:" + base64.b64encode(b"sixteen byte key").decode()
    worker = spawn_worker("fixture", env={"FLEET_ENCRYPTION_KEYS": f"{K1},{short}"})
    assert worker.wait_exit() == 2
    lines = worker.log().strip().splitlines()
    assert lines[-1] == "error: FLEET_ENCRYPTION_KEYS: key 'k9' is 16 bytes; AES-256 needs 32"
    assert K1.split(":")[1] not in worker.log() and short.split(":")[1] not in worker.log()


TOKEN = "codec-token-0123456789"


def plain_payloads(raw: str) -> list[str]:
    """The data of every json/plain payload in ``temporal ... -o json`` output, decoded."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            meta = node.get("metadata")
            if isinstance(meta, dict) and meta.get("encoding") == PLAIN and "data" in node:
                found.append(base64.b64decode(node["data"]).decode())
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    if raw.strip():
        walk(json.loads(raw))
    return found


PLAIN = base64.b64encode(b"json/plain").decode()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()
    except OSError:  # not listening yet
        return 0, {}, b""


def test_the_codec_server_decodes_for_the_temporal_cli_with_a_token(
    spawn_worker: Callable[..., WorkerProcess], temporal_address: str, tmp_path: Path
) -> None:
    env = {"TEMPORAL_ADDRESS": temporal_address, "TEMPORAL_NAMESPACE": "default"}
    keys = {"FLEET_ENCRYPTION_KEYS": f"{K2},{K1}"}
    spawn_worker("fixture", env=keys).wait_ready()
    parcel_id = f"enc-codec-{uuid.uuid4().hex[:8]}"
    workflow_id = f"parcel-{parcel_id}"
    started = run_cli("start", "fixture", "FixtureWorkflow", parcel(parcel_id), env={**env, **keys})
    assert started.returncode == 0, started.stderr

    port = free_port()
    log = (tmp_path / "codec.log").open("w")
    server = subprocess.Popen(
        [fleet_cli(), "codec-server", "--port", str(port), "--origins", "http://127.0.0.1:8233"],
        env={**os.environ, **keys, "FLEET_CODEC_TOKEN": TOKEN},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while post(f"{url}/decode", b"{}", {})[0] != 401:
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)

        # The official CLI, pointed at the codec server, shows the decoded history.
        def show(auth: str) -> subprocess.CompletedProcess[str]:
            return temporal_run(
                temporal_address,
                *("workflow", "show", "-w", workflow_id, "-o", "json"),
                *("--codec-endpoint", url, "--codec-auth", auth),
            )

        shown = show(f"Bearer {TOKEN}")
        assert shown.returncode == 0, shown.stderr
        decoded = plain_payloads(shown.stdout)
        assert any(RECIPIENT in p and SECRET_TOKEN in p for p in decoded), decoded
        assert not key_ids(shown.stdout)
        assert RECIPIENT not in raw_history(temporal_address, workflow_id)
        wrong = show("Bearer wrong")
        assert not any(RECIPIENT in p for p in plain_payloads(wrong.stdout))

        body = json.dumps({"payloads": []}).encode()
        assert post(f"{url}/decode", body, {"Authorization": "Bearer wrong"})[0] == 401
        assert post(f"{url}/decode", body, {})[0] == 401
        status, headers, _ = post(f"{url}/decode", body, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200
        # A declared body over the limit is refused before it is read.
        over = {"Authorization": f"Bearer {TOKEN}", "Content-Length": str(4 * 1024 * 1024 + 1)}
        assert post(f"{url}/decode", b"{}", over)[0] == 413
        status, headers, _ = post(
            f"{url}/decode", b"{}", {"Origin": "http://127.0.0.1:8233", "Authorization": "x"}
        )
        assert headers.get("Access-Control-Allow-Origin") == "http://127.0.0.1:8233"
        status, headers, _ = post(f"{url}/decode", b"{}", {"Origin": "http://evil.example"})
        assert "Access-Control-Allow-Origin" not in headers
        assert http_get(f"{url}/decode")[0] == 405
    finally:
        server.terminate()
        code = server.wait(timeout=10)
        log.close()
        assert code == 0, (tmp_path / "codec.log").read_text()
    terminated = temporal_run(temporal_address, "workflow", "terminate", "-w", workflow_id)
    assert terminated.returncode == 0, terminated.stderr


def test_the_codec_server_refuses_to_start_without_a_token() -> None:
    done = run_cli("codec-server", "--port", "0", env={"FLEET_ENCRYPTION_KEYS": K1})
    assert done.returncode == 2
    assert "FLEET_CODEC_TOKEN (or FLEET_CODEC_TOKEN_FILE) must hold a bearer token" in done.stderr


def test_decrypt_only_reads_ciphertext_and_writes_plaintext(
    spawn_worker: Callable[..., WorkerProcess], temporal_address: str
) -> None:
    # Turning encryption on for a running fleet: readers get the keyring decrypt-only first,
    # so an encrypted payload from an early writer never reaches a worker without the key.
    env = {"TEMPORAL_ADDRESS": temporal_address, "TEMPORAL_NAMESPACE": "default"}
    reader = {"FLEET_ENCRYPTION_KEYS": K1, "FLEET_ENCRYPTION_MODE": "decrypt-only"}
    spawn_worker("fixture", env=reader).wait_ready()
    parcel_id = f"enc-ro-{uuid.uuid4().hex[:8]}"
    workflow_id = f"parcel-{parcel_id}"
    started = run_cli(
        "start",
        "fixture",
        "FixtureWorkflow",
        parcel(parcel_id),
        env={**env, "FLEET_ENCRYPTION_KEYS": K1},
    )
    assert started.returncode == 0, started.stderr
    awaiting_approval(workflow_id, {**env, **reader})  # the worker decrypted the input
    raw = raw_history(temporal_address, workflow_id)
    assert key_ids(raw) == {"k1"}, "the input was written encrypted"
    # What the decrypt-only worker wrote (activity results) is plaintext JSON.
    assert base64.b64encode(b"json/plain").decode() in raw
    refused = run_cli("result", workflow_id, env={**env, **reader, "FLEET_ENCRYPTION_MODE": "x"})
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: FLEET_ENCRYPTION_MODE='x' is invalid")
    run_cli("signal", workflow_id, "approve", '{"approved_by": "enc"}', env={**env, **reader})
    assert run_cli("result", workflow_id, env={**env, **reader}).returncode == 0
