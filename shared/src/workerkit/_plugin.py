"""The project's SDK Plugin: one place that configures every Client, Worker and Replayer.

The data converter (strict JSON, and the payload encryption when a keyring is configured)
and the interceptors (tracing, structured logs and metrics, then the queue's own) are applied
by the SDK's plugin mechanism to whatever the project creates: the worker's client and worker,
every client ``fleet`` opens, the replay gate's and the tests' replayers. A Client connected
with it passes it on to the Workers built on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import temporalio.client
import temporalio.worker
from temporalio.plugin import SimplePlugin
from workerkit._converter import data_converter
from workerkit._interceptors import ObservabilityInterceptor
from workerkit._tracing import tracing_interceptor

__all__ = ["PLUGIN_NAME", "WorkerkitPlugin"]

PLUGIN_NAME = "workerkit"

Interceptor = temporalio.client.Interceptor | temporalio.worker.Interceptor


class WorkerkitPlugin(SimplePlugin):
    """The data converter and interceptors of the project, for Client, Worker and Replayer.

    Args:
        environ: Where the keyring variables are read (default: the process environment).
        interceptors: Interceptors to add after the project's own (e.g. a queue's).
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        converter = data_converter(environ)  # a malformed keyring fails here, once
        super().__init__(
            PLUGIN_NAME,
            data_converter=lambda _given: converter,
            interceptors=[tracing_interceptor(), ObservabilityInterceptor(), *interceptors],
        )
