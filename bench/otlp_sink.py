"""Where the workers export spans: it answers as a collector would and keeps nothing, so a
run pays for the export without a collector beside it."""

from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class OtlpSink:
    """An OTLP/HTTP endpoint that accepts and drops exports, counting them."""

    def __init__(self) -> None:
        self.exports = 0
        self.last_export = 0.0  # time.monotonic() of the last one answered
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.exports += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                sink.last_export = time.monotonic()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    async def drained(self, delay_s: float) -> None:
        """Wait for the exporter's next export, or ``delay_s`` (its schedule delay) without
        one: the worker then holds no span of the run it has not sent."""
        seen, deadline = self.exports, time.monotonic() + delay_s
        # The sink counts in its own thread, so a poll rather than an asyncio.Event.
        while self.exports == seen and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
