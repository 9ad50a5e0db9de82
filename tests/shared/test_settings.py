"""Worker settings: typed defaults, queue tuning, environment overrides, one-line errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from workerkit import SettingError, Tuning, WorkerSettings, parse_duration


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
    } <= described
    assert len(described) == 20
