"""Ids that every attempt of an activity computes alike, for idempotency across retries."""

from __future__ import annotations

import hashlib

__all__ = ["derived_id"]


def derived_id(prefix: str, key: str) -> str:
    """``<prefix>-<12 hex of sha256(key)>``: the same on every attempt and every pod.

    Use it instead of a random id wherever a retry must find what an earlier attempt
    did (a reservation, a payment, a delivery), with ``key`` the workflow's own key.
    """
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
