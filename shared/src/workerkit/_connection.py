"""Connecting to Temporal: SDK envconfig for the settings, bounded retry for start-up."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import Client, Interceptor
from temporalio.envconfig import ClientConfig, ClientConnectConfig
from temporalio.runtime import Runtime
from workerkit._exceptions import ConfigurationError, ConnectError, SettingError
from workerkit._plugin import WorkerkitPlugin

__all__ = ["connect", "load_connect_config"]

_log = logging.getLogger("workerkit.connection")
_DEFAULT_ADDRESS = "localhost:7233"
# Where the SDK's transport error turns into its nested (Rust) details, e.g.
# `Server connection error: tonic::transport::Error(Transport, ConnectError(...))`, and the
# reason inside them (`message: "Connection refused"`).
_NESTED = re.compile(r":?\s*[\w:]+(?:\(|\s\{)")
_REASON = re.compile(r'\b(?:message|error): "([^"]*)"')


def _reason(err: BaseException) -> str:
    """The SDK's connect error on one line: its nested details give way to their reason."""
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else ""
    nested = _NESTED.search(text)
    if nested is None:
        return text
    head = text[: nested.start()]
    reason = _REASON.search(text, nested.start())
    return head if reason is None else f"{head}: {reason.group(1)}"


def load_connect_config(environ: Mapping[str, str] | None = None) -> ClientConnectConfig:
    """Load connection settings the way every Temporal SDK and the CLI do.

    ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_*``,
    ``TEMPORAL_PROFILE`` and ``TEMPORAL_CONFIG_FILE`` work as documented by Temporal.

    Raises:
        ConfigurationError: The profile or config file is invalid.
    """
    env = os.environ if environ is None else environ
    for variable in ("TEMPORAL_NAMESPACE", "TEMPORAL_ADDRESS"):
        # The SDK reads an empty value as unset and would quietly use its default.
        if variable in env and not env[variable].strip():
            raise SettingError(variable, env[variable], "a non-empty value (or leave it unset)")
    try:
        config = ClientConfig.load_client_connect_config(override_env_vars=environ)
    except Exception as err:
        raise ConfigurationError(f"Temporal client configuration is invalid: {err}") from err
    config.setdefault("target_host", _DEFAULT_ADDRESS)
    return config


async def connect(
    *,
    timeout: timedelta = timedelta(seconds=60),
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
    environ: Mapping[str, str] | None = None,
) -> Client:
    """Connect, retrying with capped exponential backoff until ``timeout`` passes.

    The client carries the project's plugin (:class:`WorkerkitPlugin`: its data converter
    and interceptors, then ``interceptors``), and passes it on to Workers built on it.

    In compose and Kubernetes the server often comes up after the worker, so a
    refused connection at start-up is expected and retried.

    Raises:
        ConfigurationError: The connection settings are invalid.
        ConnectError: The server was not reachable before the deadline.
    """
    config = load_connect_config(environ)
    options: dict[str, Any] = dict(config)
    address = options["target_host"]
    plugin = WorkerkitPlugin(environ, interceptors=interceptors)  # reads the keyring once
    deadline = time.monotonic() + timeout.total_seconds()
    delay = 0.2
    attempt = 0
    while True:
        attempt += 1
        try:
            return await Client.connect(
                **options,
                runtime=runtime,
                plugins=[plugin],
            )
        except ValueError as err:  # the SDK's check of the address, TLS or API key settings
            raise ConfigurationError(
                f"Temporal connection settings are invalid (address {address!r}): {err}"
            ) from None
        except (RuntimeError, OSError) as err:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConnectError(
                    f"could not connect to Temporal at {address} within "
                    f"{timeout.total_seconds():g}s ({attempt} attempts): {_reason(err)}"
                ) from err
            # Why, once: the later attempts are the same story (the error says how many).
            _log.log(
                logging.WARNING if attempt == 1 else logging.DEBUG,
                "Temporal not reachable yet, retrying",
                extra={
                    "address": address,
                    "attempt": attempt,
                    "retry_in_s": round(delay, 2),
                    "reason": _reason(err),
                },
            )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)
