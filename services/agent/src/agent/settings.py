"""Settings of the agent service, from ``AGENT_*`` environment variables.

They are read when the worker starts (by the activity factory), never by the workflow:
the workflow's behaviour must not depend on the process that replays it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from workerkit import Accepts, EnvSettings, SettingError, setting

# The workflow's start-to-close timeout of one model call. The HTTP timeout must stay below
# it, so a hung request ends as a retryable ModelUnavailable rather than an activity timeout.
MODEL_CALL_TIMEOUT = timedelta(seconds=120)
MAX_REQUEST_TIMEOUT = MODEL_CALL_TIMEOUT - timedelta(seconds=10)
DEFAULT_BASE_URL = "https://api.openai.com/v1"

ProviderName = Literal["local", "openai"]


def _http_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(raw)
    return url


class AgentSettings(EnvSettings, prefix="AGENT_"):
    """Which model provider the activities call (the outbox is in DATABASE_URL).

    Attributes:
        provider: ``local`` (deterministic, no network) or ``openai`` (any
            OpenAI-compatible ``/chat/completions`` endpoint).
        base_url: The endpoint's base URL (``…/v1``); ``openai`` only.
        api_key: Sent as ``Authorization: Bearer``; optional for local servers.
        model: The model name; required for ``openai``.
        request_timeout: Timeout of one HTTP request to the provider.
    """

    provider: ProviderName = setting(
        Accepts.choice("local", "openai"),
        default="local",
        doc="the model provider: local (a stand-in, no network) or an OpenAI-compatible API",
    )
    base_url: str = setting(
        Accepts("an http:// or https:// URL", _http_url),
        default=DEFAULT_BASE_URL,
        doc="the OpenAI-compatible API's base URL",
    )
    api_key: str | None = setting(
        Accepts("an API key", str),
        default=None,
        repr=False,
        doc="the provider's API key (a Secret)",
    )
    model: str = setting(
        Accepts("a model name", str.strip), default="", doc="the model to ask (required for openai)"
    )
    request_timeout: timedelta = setting(
        Accepts.duration(above=timedelta(0), at_most=MAX_REQUEST_TIMEOUT),
        default=timedelta(seconds=60),
        doc="how long one model request may take",
    )

    def __post_init__(self) -> None:
        if self.provider == "openai" and not self.model:
            raise SettingError(
                self.variable("model"),
                self.model,
                "a model name (required when AGENT_PROVIDER=openai)",
            )
