"""The worker's one HTTP port: ``/metrics``, ``/healthz`` (liveness), ``/readyz`` (readiness).

It runs in a daemon thread so a busy event loop never delays a probe or a scrape.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST

__all__ = ["Health", "HealthServer"]

StartResponse = Callable[..., Any]


class Health:
    """Process state that the probes report; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = False
        self._reason = "starting"

    def set_ready(self) -> None:
        """Report ready: connected and polling."""
        with self._lock:
            self._ready, self._reason = True, "polling"

    def set_not_ready(self, reason: str) -> None:
        """Report not ready, saying why (e.g. ``draining``)."""
        with self._lock:
            self._ready, self._reason = False, reason

    def readiness(self) -> tuple[bool, str]:
        """Return ``(ready, reason)``."""
        with self._lock:
            return self._ready, self._reason


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
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
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body, status, ctype = self._metrics(), "200 OK", CONTENT_TYPE_LATEST
        elif path == "/healthz":
            body, status, ctype = b"ok\n", "200 OK", "text/plain"
        elif path == "/readyz":
            ready, reason = self.health.readiness()
            status = "200 OK" if ready else "503 Service Unavailable"
            body, ctype = f"{reason}\n".encode(), "text/plain"
        else:
            body, status, ctype = b"not found\n", "404 Not Found", "text/plain"
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]
