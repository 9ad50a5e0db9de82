"""Typed inputs and outputs of the ingest workflow and activities."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IngestRequest:
    request_id: str
    payload: str


@dataclass(frozen=True)
class IngestResult:
    request_id: str
    output: str


def request_problem(request: IngestRequest) -> str | None:
    """Return why ``request`` can never be processed, or ``None`` if it is well-formed."""
    if not request.request_id.strip():
        return "request_id is empty"
    if not request.payload.strip():
        return "payload is empty"
    return None
