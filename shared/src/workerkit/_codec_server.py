"""The codec server: Temporal's codec protocol over HTTP, for the Web UI and the CLI.

``POST /encode`` and ``POST /decode`` take and return ``{"payloads": [...]}`` (the JSON form
of ``temporal.api.common.v1.Payloads``), as the Web UI (``--ui-codec-endpoint``) and the
``temporal`` CLI (``--codec-endpoint``, ``--codec-auth``) send them, with the namespace in
``X-Namespace``. Every request needs ``Authorization: Bearer <token>``, compared in constant
time with the configured token; put the server behind TLS. The CLI sends the token itself
(``--codec-auth``); the Web UI sends an ``Authorization`` header only with its users' OIDC
access tokens, so in front of the UI the token is added by the authenticating proxy that
serves it (e.g. oauth2-proxy), never by the browser.
CORS answers only the configured UI origins. Bodies are limited in size, connections in
number and time, as on the worker's port.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from wsgiref.simple_server import make_server

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from workerkit._encryption import EncryptionCodec
from workerkit._exceptions import WorkerkitError
from workerkit._http import _QuietHandler, _ThreadingWSGIServer

__all__ = ["MAX_BODY_BYTES", "CodecServer", "parse_origins"]

_log = logging.getLogger("workerkit.codec_server")
MAX_BODY_BYTES = 4 * 1024 * 1024
StartResponse = Callable[..., Any]


class CodecServer:
    """Serves ``/encode`` and ``/decode`` with ``codec`` on ``host:port`` (0: a free port)."""

    def __init__(
        self,
        *,
        codec: EncryptionCodec,
        token: str,
        host: str,
        port: int,
        origins: Sequence[str] = (),
    ) -> None:
        self._codec = codec
        self._token = f"Bearer {token}".encode()
        self._origins = set(origins)
        self._loop = asyncio.new_event_loop()  # the codec is async; one private loop
        self._lock = threading.Lock()
        self._server = make_server(
            host, port, self._app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.port: int = self._server.server_port

    def serve_forever(self) -> None:
        """Serve until :meth:`stop`."""
        self._server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()

    def _cors(self, environ: dict[str, Any]) -> list[tuple[str, str]]:
        origin = environ.get("HTTP_ORIGIN", "")
        if origin and origin in self._origins:
            return [
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Allow-Methods", "POST, OPTIONS"),
                (
                    # Authorization-Extras: the UI's ID token, sent with its access token.
                    "Access-Control-Allow-Headers",
                    "Authorization, Authorization-Extras, Content-Type, X-Namespace",
                ),
                ("Access-Control-Allow-Credentials", "true"),
                ("Vary", "Origin"),
            ]
        return [("Vary", "Origin")]

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        cors = self._cors(environ)
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")

        def answer(status: str, body: bytes, ctype: str = "text/plain") -> list[bytes]:
            headers = [("Content-Type", ctype), ("Content-Length", str(len(body))), *cors]
            start_response(status, headers)
            return [body]

        if path not in ("/encode", "/decode"):
            return answer("404 Not Found", b"not found\n")
        if method == "OPTIONS":  # CORS preflight: no credentials are sent with it
            return answer("204 No Content", b"")
        if method != "POST":
            return answer("405 Method Not Allowed", b"use POST\n")
        supplied = environ.get("HTTP_AUTHORIZATION", "").encode()
        if not hmac.compare_digest(supplied, self._token):
            return answer("401 Unauthorized", b"missing or wrong bearer token\n")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return answer("400 Bad Request", b"bad Content-Length\n")
        if length > MAX_BODY_BYTES:
            return answer("413 Content Too Large", f"over {MAX_BODY_BYTES} bytes\n".encode())
        body = environ["wsgi.input"].read(length)
        try:
            payloads = json_format.Parse(body, Payloads())
        except (json_format.ParseError, UnicodeDecodeError) as err:
            return answer("400 Bad Request", f"not a Payloads JSON object: {err}\n".encode())
        work = self._codec.encode if path == "/encode" else self._codec.decode
        try:
            with self._lock:  # one private loop, used by one request at a time
                result = self._loop.run_until_complete(work(list(payloads.payloads)))
        except (WorkerkitError, ValueError) as err:
            # e.g. a key the keyring lacks: say which, without any payload data
            return answer("422 Unprocessable Content", f"{err}\n".encode())
        out = json_format.MessageToJson(Payloads(payloads=result))
        _log.debug("codec request", extra={"path": path, "payloads": len(result)})
        return answer("200 OK", out.encode(), "application/json")


def parse_origins(text: str) -> list[str]:
    """Comma-separated UI origins (``http://host:port``)."""
    return [o.strip().rstrip("/") for o in text.split(",") if o.strip()]
