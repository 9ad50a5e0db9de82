"""Payload encryption (on in the stack, a keyring of the run's own): the server's history of
an order holds binary/encrypted payloads only, `fleet query` decodes, the Web UI's settings
name the codec server, which decodes the order with the token and refuses without it, and
the temporal CLI shows the history decoded through it."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from e2e.harness.commands import http_json
from e2e.harness.history import history
from e2e.harness.report import Report
from e2e.harness.stack import NAMESPACE, E2eStack
from e2e.harness.workload import ADDRESS, RUN, confirm_order, start_order

TITLE = "payload encryption: the server stores ciphertext, the codec decodes"
# Payloads that are never encoded: search attributes (the server indexes them) and the SDK's
# patch markers (a patch id, written by the SDK itself); neither carries the workflow's data.
UNENCODED = {"searchAttributes", "markerRecordedEventAttributes"}


def payloads_in(node: Any) -> list[tuple[str, str]]:
    """Every payload of a `temporal ... -o json` document, but the UNENCODED ones:
    (encoding, decoded data text)."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        meta = node.get("metadata")
        if isinstance(meta, dict) and "encoding" in meta and "data" in node:
            encoding = base64.b64decode(meta["encoding"]).decode(errors="replace")
            data = base64.b64decode(node.get("data") or "").decode(errors="replace")
            found.append((encoding, data))
        for key, value in node.items():
            if key not in UNENCODED:
                found += payloads_in(value)
    elif isinstance(node, list):
        for item in node:
            found += payloads_in(item)
    return found


def check(stack: E2eStack, report: Report) -> None:
    """The stack runs encrypted: what the server stores, the UI's codec, the codec server."""
    order_id = f"E2E-ENC-{RUN}"
    workflow_id = f"order-{order_id}"
    start_order(stack, order_id)
    secrets = (ADDRESS["line1"], "tok_visa", "cust-e2e")
    stored = payloads_in(stack.temporal("workflow", "show", "-w", workflow_id))
    leaked = [d for _, d in stored if any(x in d for x in secrets)]
    report.check(
        "encryption: the server's history holds binary/encrypted payloads only",
        bool(stored) and {e for e, _ in stored} == {"binary/encrypted"} and not leaked,
        f"{len(stored)} payloads, encodings {sorted({e for e, _ in stored})}",
    )
    status = json.loads(stack.fleet("orders", "query", workflow_id, "status"))
    report.check(
        "encryption: fleet query decodes (the workers' keyring)",
        status["shipping_address"]["line1"] == ADDRESS["line1"],
        status["stage"],
    )

    ui = f"http://127.0.0.1:{stack.env['FLEET_UI_PORT']}"
    endpoint = str(http_json(f"{ui}/api/v1/settings").get("Codec", {}).get("Endpoint", ""))
    codec = f"http://127.0.0.1:{stack.env['FLEET_CODEC_PORT']}"
    report.check(
        "encryption: the Web UI is configured with the codec server", endpoint == codec, endpoint
    )
    token = (Path(stack.env["FLEET_SECRETS_DIR"]) / "codec-token").read_text().strip()
    events = history(stack, workflow_id)
    body = json.dumps(
        {"payloads": events[0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"]}
    ).encode()

    def decode(headers: dict[str, str]) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{endpoint}/decode",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "X-Namespace": NAMESPACE, **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return int(resp.status), json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, None

    code, decoded = decode({"Authorization": f"Bearer {token}", "Origin": ui})
    plain = [d for _, d in payloads_in(decoded)] if decoded else []
    report.check(
        "encryption: the codec server (the UI's endpoint) decodes the order with the token",
        code == 200 and any(ADDRESS["line1"] in d for d in plain),
        f"HTTP {code}",
    )
    report.check(
        "encryption: the codec server refuses a request without the token",
        decode({"Origin": ui})[0] == 401 and decode({"Authorization": "Bearer wrong"})[0] == 401,
        "401",
    )
    shown = stack.temporal(
        "workflow",
        "show",
        "-w",
        workflow_id,
        "--codec-endpoint",
        "http://codec-server:8081",
        "--codec-auth",
        f"Bearer {token}",
    )
    report.check(
        "encryption: the temporal CLI shows the history decoded through the codec server",
        any(ADDRESS["line1"] in d for _, d in payloads_in(shown)),
        "temporal workflow show --codec-endpoint http://codec-server:8081",
    )
    confirm_order(stack, order_id)
    stack.fleet("orders", "result", workflow_id)
