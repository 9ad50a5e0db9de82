"""Settings of the agent service, from ``AGENT_*`` environment variables.

They are read when the worker starts (by the activity factory), never by the workflow:
the workflow's behaviour must not depend on the process that replays it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from workerkit import SettingError, parse_duration

# The workflow's start-to-close timeout of one model call. The HTTP timeout must stay below
# it, so a hung request ends as a retryable ModelUnavailable rather than an activity timeout.
MODEL_CALL_TIMEOUT = timedelta(seconds=120)
MAX_REQUEST_TIMEOUT = MODEL_CALL_TIMEOUT - timedelta(seconds=10)
DEFAULT_BASE_URL = "https://api.openai.com/v1"

ProviderName = Literal["local", "openai"]


@dataclass(frozen=True, kw_only=True)
class AgentSettings:
    """Which model provider the activities call (the outbox is in DATABASE_URL).

    Attributes:
        provider: ``local`` (deterministic, no network) or ``openai`` (any
            OpenAI-compatible ``/chat/completions`` endpoint).
        base_url: The endpoint's base URL (``…/v1``); ``openai`` only.
        api_key: Sent as ``Authorization: Bearer``; optional for local servers.
        model: The model name; required for ``openai``.
        request_timeout: Timeout of one HTTP request to the provider.
    """

    provider: ProviderName = "local"
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    model: str = ""
    request_timeout: timedelta = timedelta(seconds=60)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AgentSettings:
        """Read ``AGENT_PROVIDER``, ``AGENT_BASE_URL``, ``AGENT_API_KEY``, ``AGENT_MODEL``,
        and ``AGENT_REQUEST_TIMEOUT``.

        Raises:
            SettingError: A variable holds a value that is not accepted.
        """
        env = os.environ if environ is None else environ

        raw_provider = env.get("AGENT_PROVIDER", "local")
        provider = raw_provider.strip().lower()
        if provider not in ("local", "openai"):
            raise SettingError("AGENT_PROVIDER", raw_provider, "one of local, openai")

        base_url = (env.get("AGENT_BASE_URL") or DEFAULT_BASE_URL).strip().rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise SettingError("AGENT_BASE_URL", base_url, "an http:// or https:// URL")

        model = env.get("AGENT_MODEL", "").strip()
        if provider == "openai" and not model:
            raise SettingError(
                "AGENT_MODEL", model, "a model name (required when AGENT_PROVIDER=openai)"
            )

        raw_timeout = env.get("AGENT_REQUEST_TIMEOUT", "60s")
        try:
            timeout = parse_duration(raw_timeout)
            if not timedelta(0) < timeout <= MAX_REQUEST_TIMEOUT:
                raise ValueError(raw_timeout)
        except ValueError:
            raise SettingError(
                "AGENT_REQUEST_TIMEOUT",
                raw_timeout,
                f"a duration above 0 and at most {MAX_REQUEST_TIMEOUT.total_seconds():g}s",
            ) from None

        return cls(
            provider="openai" if provider == "openai" else "local",
            base_url=base_url,
            api_key=env.get("AGENT_API_KEY") or None,
            model=model,
            request_timeout=timeout,
        )
