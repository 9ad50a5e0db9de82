"""Settings: typed defaults, queue tuning, environment overrides, one-line errors.

The ``WORKER_*`` settings and a service's own (an :class:`EnvSettings` class) share the parser.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Literal

import pytest
from workerkit import (
    Accepts,
    EnvSettings,
    SettingError,
    Tuning,
    WorkerSettings,
    parse_duration,
    setting,
)


def test_defaults_come_from_the_queue_tuning() -> None:
    settings = WorkerSettings.from_env({}, tuning=Tuning(max_concurrent_activities=7))
    assert settings.max_concurrent_activities == 7
    assert settings.shutdown_timeout == timedelta(seconds=30)
    assert settings.log_format == "json" and settings.tuner == "fixed"


def test_environment_overrides_tuning() -> None:
    settings = WorkerSettings.from_env(
        {
            "WORKER_MAX_CONCURRENT_ACTIVITIES": "12",
            "WORKER_TUNER": "Resource",
            "WORKER_POLLER_AUTOSCALING": "yes",
            "WORKER_SHUTDOWN_TIMEOUT": "2m",
            "WORKER_RESOURCE_TARGET_CPU": "0.5",
        },
        tuning=Tuning(max_concurrent_activities=7),
    )
    assert settings.max_concurrent_activities == 12
    assert settings.tuner == "resource" and settings.poller_autoscaling
    assert settings.shutdown_timeout == timedelta(minutes=2)
    assert settings.resource_target_cpu == 0.5


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("WORKER_HTTP_PORT", "http", "an integer from 0 to 65535"),
        ("WORKER_HTTP_PORT", "70000", "an integer from 0 to 65535"),
        ("WORKER_MAX_CONCURRENT_WORKFLOW_TASKS", "1", "an integer >= 2"),
        ("WORKER_TUNER", "magic", "one of fixed, resource"),
        ("WORKER_RESOURCE_TARGET_MEMORY", "1.5", "greater than 0 and at most 1"),
        ("WORKER_POLLER_AUTOSCALING", "maybe", "true or false"),
        ("WORKER_SHUTDOWN_TIMEOUT", "soon", "a duration"),
    ],
)
def test_invalid_values_name_the_variable(variable: str, value: str, accepted: str) -> None:
    with pytest.raises(SettingError) as info:
        WorkerSettings.from_env({variable: value})
    message = str(info.value)
    assert message.startswith(f"{variable}={value!r} is invalid: expected ")
    assert accepted in message and "\n" not in message


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30), ("30s", 30), ("250ms", 0.25), ("1.5m", 90), ("2h", 7200), ("7d", 604800)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_every_setting_is_described() -> None:
    described = {variable for variable, _, _ in WorkerSettings.describe()}
    assert {
        "WORKER_SHUTDOWN_TIMEOUT",
        "WORKER_VERSIONING",
        "WORKER_LOOP_STALL_TIMEOUT",
        "WORKER_HEARTBEAT_INTERVAL",
    } <= described
    assert len(described) == 22


class ShopSettings(EnvSettings, prefix="SHOP_"):
    """A service's settings, as a service declares them."""

    pack_seconds: float = setting(Accepts.number(min=0), default=0.05, doc="packing time")
    ratio: float = setting(Accepts.number(min=0, max=1), default=0.5)
    limit: int = setting(Accepts.integer(min=1), default=10)
    window: timedelta = setting(Accepts.duration(above=timedelta(0)), default=timedelta(minutes=1))
    timeout: timedelta = setting(
        Accepts.duration(above=timedelta(0), at_most=timedelta(seconds=110)),
        default=timedelta(seconds=60),
    )
    mode: Literal["local", "remote"] = setting(Accepts.choice("local", "remote"), default="local")
    token: str | None = setting(Accepts("a token", str), default=None, repr=False)

    def __post_init__(self) -> None:
        if self.mode == "remote" and self.token is None:
            raise SettingError(
                self.variable("token"), "", "a token (required when SHOP_MODE=remote)"
            )


def test_service_settings_default_when_unset_or_blank() -> None:
    assert ShopSettings.from_env({}) == ShopSettings.from_env({"SHOP_LIMIT": " ", "SHOP_MODE": ""})
    settings = ShopSettings.from_env({"SHOP_LIMIT": "3", "SHOP_MODE": "Remote", "SHOP_TOKEN": "t"})
    assert (settings.limit, settings.mode, settings.token) == (3, "remote", "t")
    assert settings.pack_seconds == 0.05 and "token" not in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.limit = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("SHOP_PACK_SECONDS", "-1", "a number >= 0"),
        ("SHOP_PACK_SECONDS", "nan", "a number >= 0"),
        ("SHOP_RATIO", "2", "a number from 0 to 1"),
        ("SHOP_LIMIT", "0", "an integer >= 1"),
        ("SHOP_LIMIT", "1.5", "an integer >= 1"),
        ("SHOP_WINDOW", "0s", "a duration above 0"),
        ("SHOP_TIMEOUT", "5m", "a duration above 0 and at most 110s"),
        ("SHOP_MODE", "cloud", "one of local, remote"),
        ("SHOP_TOKEN", "", "a token (required when SHOP_MODE=remote)"),
    ],
)
def test_service_settings_errors_name_the_variable(
    variable: str, value: str, accepted: str
) -> None:
    environ = {"SHOP_MODE": "remote"} | {variable: value}
    with pytest.raises(SettingError) as info:
        ShopSettings.from_env(environ)
    assert str(info.value) == f"{variable}={value!r} is invalid: expected {accepted}"


def test_service_settings_are_described() -> None:
    assert ShopSettings.describe()[0] == ("SHOP_PACK_SECONDS", "a number >= 0", "packing time")


def test_a_setting_needs_a_parser_and_a_prefix() -> None:
    with pytest.raises(TypeError, match="declare plain with setting"):

        class Plain(EnvSettings, prefix="PLAIN_"):
            plain: int = 1

    with pytest.raises(TypeError, match="must be like 'ORDERS_'"):

        class Lower(EnvSettings, prefix="lower_"):
            pass
