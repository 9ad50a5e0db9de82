"""The worker's one HTTP port: ``/metrics``, ``/healthz`` (liveness), ``/readyz`` (readiness).

It runs in a daemon thread so a busy event loop never delays a probe or a scrape, and so
``/healthz`` can tell a stalled event loop from a live one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST

__all__ = ["Health", "HealthServer"]

StartResponse = Callable[..., Any]


class Health:
    """Process state that the probes report; thread-safe.

    Liveness is the event loop's heartbeat: the loop calls :meth:`beat` every second, and a
    probe that finds no beat for longer than ``stall_after`` reports the loop stalled (a sync
    call in an ``async def`` activity, a deadlock), so Kubernetes restarts the process.
    Readiness is what the runner last found: connected and polling, or why not.
    """

    def __init__(
        self, *, stall_after: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lock = threading.Lock()
        self._ready = False
        self._reason = "starting"
        self._stall_after = stall_after
        self._clock = clock
        self._last_beat: float | None = None
        self._problems: dict[str, str] = {}

    def beat(self) -> None:
        """Record that the event loop ran just now."""
        with self._lock:
            self._last_beat = self._clock()

    def liveness(self) -> tuple[bool, str]:
        """Return ``(alive, reason)``: not alive once the loop has missed ``stall_after``."""
        with self._lock:
            last = self._last_beat
        if last is None:
            return True, "ok"  # before the loop starts beating (start-up)
        stalled = self._clock() - last
        if stalled > self._stall_after:
            return (
                False,
                f"event loop stalled for {stalled:.0f}s (threshold {self._stall_after:g}s)",
            )
        return True, "ok"

    def set_ready(self) -> None:
        """Report ready: connected and polling."""
        with self._lock:
            self._ready, self._reason = True, "polling"

    def set_not_ready(self, reason: str) -> None:
        """Report not ready, saying why (e.g. ``draining``)."""
        with self._lock:
            self._ready, self._reason = False, reason

    def report_problem(self, source: str, reason: str) -> None:
        """Report not ready while ``source`` (e.g. ``database``) has a problem, saying why."""
        with self._lock:
            self._problems[source] = reason

    def clear_problem(self, source: str) -> None:
        """``source`` is fine again."""
        with self._lock:
            self._problems.pop(source, None)

    def readiness(self) -> tuple[bool, str]:
        """Return ``(ready, reason)``: ready once polling, while no source has a problem."""
        with self._lock:
            if self._ready and self._problems:
                return False, "; ".join(self._problems.values())
            return self._ready, self._reason


# A probe or a scrape is one short GET: a client that holds a connection open without
# finishing its request is cut off after this long, and at most this many connections are
# served at once (the others are closed at once), so half-open connections cannot pile up
# threads without bound.
REQUEST_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 64


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # listen backlog: socketserver's default is 5

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _QuietHandler(WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        """Probes arrive every few seconds; access logs would drown the worker's own."""


class HealthServer:
    """Serves probes and metrics on ``host:port`` (port 0 picks a free one)."""

    def __init__(
        self, *, host: str, port: int, health: Health, metrics: Callable[[], bytes]
    ) -> None:
        self.health = health
        self._metrics = metrics
        self._server = make_server(
            host, port, self._app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.port: int = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="workerkit-http",
            daemon=True,
        )

    def start(self) -> None:
        """Start serving in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        headers: list[tuple[str, str]] = []
        if method not in ("GET", "HEAD"):
            body, status, ctype = b"method not allowed\n", "405 Method Not Allowed", "text/plain"
            headers.append(("Allow", "GET, HEAD"))
        elif path == "/metrics":
            body, status, ctype = self._metrics(), "200 OK", CONTENT_TYPE_LATEST
        elif path == "/healthz":
            alive, reason = self.health.liveness()
            status = "200 OK" if alive else "503 Service Unavailable"
            body, ctype = f"{reason}\n".encode(), "text/plain"
        elif path == "/readyz":
            ready, reason = self.health.readiness()
            status = "200 OK" if ready else "503 Service Unavailable"
            body, ctype = f"{reason}\n".encode(), "text/plain"
        else:
            body, status, ctype = b"not found\n", "404 Not Found", "text/plain"
        headers += [("Content-Type", ctype), ("Content-Length", str(len(body)))]
        start_response(status, headers)
        return [] if method == "HEAD" else [body]
