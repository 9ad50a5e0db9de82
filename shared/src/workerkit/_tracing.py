"""OpenTelemetry tracing, configured only by the standard ``OTEL_*`` variables.

Export is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
is set (OTLP over HTTP) and off otherwise. The SDK reads ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER`` and the exporter variables itself.
Spans cross the client → workflow → activity boundary through
``temporalio.contrib.opentelemetry.TracingInterceptor``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.contrib.opentelemetry import TracingInterceptor

__all__ = ["configure_tracing", "tracing_interceptor"]

_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def configure_tracing(environ: Mapping[str, str] | None = None) -> TracerProvider | None:
    """Install a global tracer provider exporting over OTLP, if an endpoint is configured.

    Returns:
        The installed provider (flush it at shutdown), or ``None`` when tracing is off.
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if not any(env.get(var) for var in _ENDPOINT_VARS):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def tracing_interceptor() -> TracingInterceptor:
    """Return the SDK's tracing interceptor bound to the global tracer provider."""
    return TracingInterceptor()
