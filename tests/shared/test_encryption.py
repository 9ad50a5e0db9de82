"""Payload encryption on the real dev server: what Temporal stores is only ciphertext.

The official `temporal` CLI reads the raw history (it has no key); `fleet` and the workers
hold the keyring and see plaintext. Rotation keeps old histories readable; a payload whose key
is gone fails its workflow task visibly, naming the key id, and the worker keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from workerkit import data_converter
from workerkit._codec import EncryptionCodec, load_keyring, new_key

from orders.workflows import OrderWorkflow

from support import WorkerProcess, http_get, run_cli, temporal_run

K1, K2, K3 = new_key("k1"), new_key("k2"), new_key("k3")
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James Sq",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}
SECRET_TOKEN = "tok_visa"


def order(order_id: str) -> str:
    return json.dumps(
        {
            "order_id": order_id,
            "customer_id": "cust-secret",
            "payment_token": SECRET_TOKEN,
            "items": [{"sku": "sku-widget", "quantity": 1, "unit_price_cents": 100}],
            "shipping_address": ADDRESS,
        }
    )


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
    worker = spawn_worker("orders", env={"FLEET_ENCRYPTION_KEYS": K1})
    worker.wait_ready()
    order_id = f"enc-{uuid.uuid4().hex[:8]}"
    workflow_id = f"order-{order_id}"
    assert run_cli("start", "orders", "OrderWorkflow", order(order_id), env=k1).returncode == 0
    deadline = time.monotonic() + 20
    while True:
        status = run_cli("query", workflow_id, "status", env=k1)
        if status.returncode == 0 and json.loads(status.stdout)["stage"] == "awaiting_confirmation":
            break
        assert time.monotonic() < deadline, status.stdout + status.stderr
        time.sleep(0.2)
    assert json.loads(status.stdout)["shipping_address"]["name"] == "Ada Lovelace"

    raw = raw_history(temporal_address, workflow_id)
    for plaintext in (SECRET_TOKEN, "Ada Lovelace", "St James", "cust-secret"):
        assert plaintext not in raw, plaintext
    assert base64.b64encode(b"binary/encrypted").decode() in raw
    assert key_ids(raw) == {"k1"}

    # Rotation: k2 first, k1 still listed. The running order, written with k1, goes on.
    worker.signal()
    assert worker.wait_exit() == 0
    rotated = spawn_worker("orders", env={"FLEET_ENCRYPTION_KEYS": f"{K2},{K1}"})
    rotated.wait_ready()
    k21 = {**env, "FLEET_ENCRYPTION_KEYS": f"{K2},{K1}"}
    signalled = run_cli("signal", workflow_id, "confirm", '{"confirmed_by": "enc"}', env=k21)
    assert signalled.returncode == 0, signalled.stderr
    result = run_cli("result", workflow_id, env=k21)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["shipped_to"]["name"] == "Ada Lovelace"
    final = raw_history(temporal_address, workflow_id)
    assert key_ids(final) == {"k1", "k2"}
    # The encrypted history replays on today's code with the keyring (as the gate does).
    replayer = Replayer(
        workflows=[OrderWorkflow],
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
    order_id = f"enc-missing-{uuid.uuid4().hex[:8]}"
    workflow_id = f"order-{order_id}"
    started = run_cli(
        "start",
        "orders",
        "OrderWorkflow",
        order(order_id),
        env={**env, "FLEET_ENCRYPTION_KEYS": K1},
    )
    assert started.returncode == 0, started.stderr
    worker = spawn_worker("orders", env={"FLEET_ENCRYPTION_KEYS": K3})
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
    worker = spawn_worker("orders", env={"FLEET_ENCRYPTION_KEYS": f"{K1},{short}"})
    assert worker.wait_exit() == 2
    lines = worker.log().strip().splitlines()
    assert lines[-1] == "error: FLEET_ENCRYPTION_KEYS: key 'k9' is 16 bytes; AES-256 needs 32"
    assert K1.split(":")[1] not in worker.log() and short.split(":")[1] not in worker.log()
