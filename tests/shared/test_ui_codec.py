"""The Web UI decodes a workflow's input through the codec server, in a real browser.

Headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright; no browser is
downloaded) opens the dev server's Web UI, whose remote codec is the codec server
(``--ui-codec-endpoint``), on the page of a parcel of the fixture queue. With the codec server
and the bearer token the page shows the decoded recipient and address; without the token, and
without the codec server, it shows only the ciphertext Temporal stores. Each view's screenshot
is kept under ``.data/test-artifacts/ui-codec/``.

How the bearer token reaches the codec server: the Web UI sends ``Authorization`` to its codec
endpoint only with "pass access token" on, an ``https://`` endpoint and a user logged in
through the UI's OIDC auth, and what it sends is that user's access token. The dev server's UI
has no auth (``start-dev`` has no flag for it; the UI even empties a stored ``AuthUser``), so
it never sends a token: the browser session adds ``Authorization: Bearer <token>`` to the
requests for the codec server's origin only (a Playwright route), as an authenticating proxy
in front of the codec server does in a deployment. The codec server's check is the
production one: the view without the token shows that it refuses (401).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, Response, Route, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from workerkit._encryption import new_key

from support import (
    CodecServerProcess,
    DevServerWithUI,
    WorkerProcess,
    distinct_free_ports,
    run_cli,
    start_codec_server,
    start_dev_server_with_ui,
    start_worker,
    stop_process,
    system_chromium,
    temporal_run,
)

# slow: a dev server with its UI, a codec server, a worker (of the fixture queue) and Chromium.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fixture_queue")]

ARTIFACTS = Path(__file__).resolve().parents[2] / ".data" / "test-artifacts" / "ui-codec"
KEYS = new_key("ui1")
TOKEN = "ui-codec-token-0123456789"
NAME = "Ada Lovelace"
STREET = "12 St James's Sq"
SECRET_TOKEN = "tok_ui_visa"
PLAINTEXTS = (NAME, "St James", SECRET_TOKEN)  # every private field of the input
WAIT_MS = 60_000


def parcel(parcel_id: str) -> str:
    return json.dumps(
        {
            "parcel_id": parcel_id,
            "recipient": NAME,
            "address": f"{STREET}, London SW1Y 4JH",
            "token": SECRET_TOKEN,
            "units": 1,
        }
    )


class CodecTraffic:
    """The page's requests to the codec server and how each ended (status or failure)."""

    def __init__(self, page: Page, origin: str) -> None:
        self._origin = origin + "/"
        self.started = 0
        self.outcomes: list[str] = []
        self.last_change = time.monotonic()
        page.on("request", self._on_request)
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_failed)

    def _mine(self, url: str) -> bool:
        return url.startswith(self._origin)

    def _on_request(self, request: Request) -> None:
        if self._mine(request.url):
            self.started += 1
            self.last_change = time.monotonic()

    def _on_response(self, response: Response) -> None:
        if self._mine(response.url):
            self.outcomes.append(str(response.status))
            self.last_change = time.monotonic()

    def _on_failed(self, request: Request) -> None:
        if self._mine(request.url):
            self.outcomes.append(f"failed: {request.failure}")
            self.last_change = time.monotonic()

    def wait_quiet(self, page: Page, quiet: float = 2.5, timeout: float = 60) -> None:
        """Wait until the UI asked the codec server, every request ended and none followed
        for ``quiet`` seconds (the UI retries a failed decode after 0.5 s and 1 s)."""
        deadline = time.monotonic() + timeout
        while not (
            self.started
            and len(self.outcomes) >= self.started
            and time.monotonic() - self.last_change >= quiet
        ):
            assert time.monotonic() < deadline, (
                f"the UI's codec requests did not settle in {timeout}s: {self.started} sent, "
                f"ended: {self.outcomes}"
            )
            page.wait_for_timeout(200)  # lets Playwright dispatch the page's events


def body_text(page: Page) -> str:
    return str(page.evaluate("() => document.body ? document.body.innerText : ''"))


def wait_for_text(page: Page, needle: str, what: str) -> None:
    try:
        page.wait_for_function(
            "(s) => document.body && document.body.innerText.includes(s)",
            arg=needle,
            timeout=WAIT_MS,
        )
    except PlaywrightTimeoutError:
        raise AssertionError(
            f"{what}: {needle!r} not on {page.url} after {WAIT_MS // 1000}s; the page shows:\n"
            f"{body_text(page)[:4000]}"
        ) from None


def open_parcel(
    browser: Browser, ui: DevServerWithUI, codec_url: str, workflow_id: str, *, token: bool
) -> tuple[Page, CodecTraffic]:
    """A fresh browser context (no stored settings or cache) on the parcel's workflow page."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    traffic = CodecTraffic(page, codec_url)
    if token:

        def with_token(route: Route) -> None:
            headers = {**route.request.headers, "authorization": f"Bearer {TOKEN}"}
            route.continue_(headers=headers)

        page.route(f"{codec_url}/**", with_token)
    page.goto(
        f"{ui.ui_url}/namespaces/default/workflows/{workflow_id}",
        wait_until="domcontentloaded",
        timeout=WAIT_MS,
    )
    return page, traffic


def assert_only_ciphertext(page: Page, ciphertext: str, what: str) -> None:
    """The page shows the stored ciphertext of the parcel's input and none of its plaintext."""
    wait_for_text(page, ciphertext[:48], f"{what}: the encrypted input")
    text, html = body_text(page), page.content()
    shown = [p for p in PLAINTEXTS if p in text or p in html]
    assert not shown, f"{what}: plaintext {shown} on {page.url}:\n{text[:4000]}"


def screenshot(page: Page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def started_input(address: str, workflow_id: str) -> dict[str, Any]:
    """The parcel's input payload as Temporal stores it (the CLI has no codec here)."""
    shown = temporal_run(address, "workflow", "show", "-w", workflow_id, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    raw = shown.stdout
    for plaintext in PLAINTEXTS:
        assert plaintext not in raw, f"{plaintext!r} stored in clear"
    data = json.loads(raw)
    events = data.get("events", data) if isinstance(data, dict) else data
    attrs = events[0]["workflowExecutionStartedEventAttributes"]
    payload: dict[str, Any] = attrs["input"]["payloads"][0]
    return payload


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    """Stops what the test started, in reverse order, however the test ends."""
    with ExitStack() as processes:
        yield processes


@pytest.mark.timeout(300)
def test_the_web_ui_shows_the_decoded_address_only_through_the_codec_server(
    stack: ExitStack, tmp_path: Path
) -> None:
    chromium = system_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    names = ("decoded", "without-token", "without-codec-server")
    for name in names:
        (ARTIFACTS / f"{name}.png").unlink(missing_ok=True)

    grpc, ui_port, http_port, metrics_port, codec_port = distinct_free_ports(5)
    codec: CodecServerProcess = start_codec_server(
        port=codec_port,
        keys=KEYS,
        token=TOKEN,
        origins=[f"http://127.0.0.1:{ui_port}"],
        workdir=tmp_path,
    )
    stack.callback(stop_process, codec.proc)
    ui = start_dev_server_with_ui(
        (grpc, ui_port, http_port, metrics_port), workdir=tmp_path, codec_endpoint=codec.url
    )
    stack.callback(stop_process, ui.proc)
    codec.wait_ready()
    ui.wait_ready()
    worker: WorkerProcess = start_worker(
        ["fixture"],
        address=ui.address,
        workdir=tmp_path,
        name="fixture-worker",
        env={"FLEET_ENCRYPTION_KEYS": KEYS},
    )
    stack.callback(worker.kill)
    worker.wait_ready(timeout=60)

    env = {
        "TEMPORAL_ADDRESS": ui.address,
        "TEMPORAL_NAMESPACE": "default",
        "FLEET_ENCRYPTION_KEYS": KEYS,
    }
    parcel_id = f"ui-{uuid.uuid4().hex[:8]}"
    workflow_id = f"parcel-{parcel_id}"
    started = run_cli("start", "fixture", "FixtureWorkflow", parcel(parcel_id), env=env)
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout)["run_id"]
    deadline = time.monotonic() + 60
    while True:  # the worker ran the parcel's first step: its payloads are encrypted too
        status = run_cli("query", workflow_id, "status", env=env)
        if status.returncode == 0 and json.loads(status.stdout)["stage"] == "awaiting_approval":
            break
        assert time.monotonic() < deadline, status.stdout + status.stderr + worker.log()
        time.sleep(0.3)
    stored = started_input(ui.address, workflow_id)
    assert stored["metadata"]["encoding"] == base64.b64encode(b"binary/encrypted").decode()
    ciphertext = stored["data"]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        try:
            # 1. The codec server is up but the browser has no token: it refuses, the UI
            #    shows the ciphertext.
            page, traffic = open_parcel(browser, ui, codec.url, workflow_id, token=False)
            traffic.wait_quiet(page)
            assert set(traffic.outcomes) == {"401"}, traffic.outcomes
            assert_only_ciphertext(page, ciphertext, "without the token")
            screenshot(page, "without-token")
            page.context.close()

            # 2. With the token: the page shows the decoded recipient and address.
            page, traffic = open_parcel(browser, ui, codec.url, workflow_id, token=True)
            wait_for_text(page, STREET, "with the codec server")
            wait_for_text(page, NAME, "with the codec server")
            assert run_id in page.url, f"the UI opened another run: {page.url}"
            assert "200" in traffic.outcomes, traffic.outcomes
            assert ciphertext[:48] not in body_text(page), "the input is decoded, not shown raw"
            screenshot(page, "decoded")
            page.context.close()

            # 3. Without the codec server: only ciphertext, even with the token.
            assert stop_process(codec.proc) == 0, codec.log()
            page, traffic = open_parcel(browser, ui, codec.url, workflow_id, token=True)
            traffic.wait_quiet(page)
            assert traffic.outcomes and all(o.startswith("failed") for o in traffic.outcomes), (
                traffic.outcomes
            )
            assert_only_ciphertext(page, ciphertext, "without the codec server")
            screenshot(page, "without-codec-server")
            page.context.close()
        finally:
            browser.close()

    for name in names:
        path = ARTIFACTS / f"{name}.png"
        assert path.is_file() and path.stat().st_size > 0, f"no screenshot at {path}"
    worker.signal()
    assert worker.wait_exit() == 0, worker.log()
