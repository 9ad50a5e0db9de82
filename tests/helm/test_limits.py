"""The limits hook: every enabled queue's task queue config is applied by `fleet limits apply`
in the image of its rollout target, with the environment's overrides, before the promotion."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from helm.rendering import DATABASE, Doc, Helm, hook_annotations, jobs_of, queue_of

# slow: helm renders the chart.
pytestmark = pytest.mark.slow

DIGEST = "sha256:" + "0123456789abcdef" * 4
OLD_DIGEST = "sha256:" + "fedcba9876543210" * 4


def _commands(docs: list[Doc]) -> dict[str, list[str]]:
    return {
        queue_of(job): job["spec"]["template"]["spec"]["containers"][0]["command"]
        for job in jobs_of(docs, "limits")
    }


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_enabled_queue_gets_its_limits_applied_before_the_promotion(
    rendered: Callable[[str], list[Doc]], registry: list[Any], env: str
) -> None:
    docs = rendered(env)
    commands = _commands(docs)
    assert set(commands) == {q.name for q in registry}
    for queue, command in commands.items():
        assert command == ["fleet", "limits", "apply", queue, "--connect-timeout", "60s"]
    for job in jobs_of(docs, "limits"):
        hooks = hook_annotations(job)
        assert hooks["helm.sh/hook"] == "post-install,post-upgrade"
        # Before the promotion hook (weight 0): a new build's limits hold before it takes work.
        assert int(hooks["helm.sh/hook-weight"]) < 0
        spec = job["spec"]["template"]["spec"]
        # The queue's connection; no keyring (it reads no payload).
        assert spec["containers"][0]["envFrom"][0]["configMapRef"]["name"].endswith(queue_of(job))
        assert not any(
            e["name"].startswith("FLEET_ENCRYPTION") for e in spec["containers"][0].get("env") or []
        )


@pytest.mark.parametrize("controller", [False, True], ids=["hook promotes", "worker controller"])
def test_overrides_become_flags_and_a_versioned_queue_uses_its_targets_image(
    helm: Helm, controller: bool
) -> None:
    docs = helm.template(
        "dev",
        values=[
            DATABASE,
            {"workerController": {"enabled": controller}},
            {
                "queues": {
                    "orders": {
                        "limits": {
                            "activityRate": 120,
                            "activityRatePerKey": 2.5,
                            "weights": {"cust-7": 3},
                        },
                        "builds": [
                            {"buildId": "old", "image": {"tag": "a", "digest": OLD_DIGEST}},
                            {"buildId": "new", "image": {"tag": "b", "digest": DIGEST}},
                        ],
                        "rollout": {"target": "old"},
                    }
                }
            },
        ],
    )
    [job] = [j for j in jobs_of(docs, "limits") if queue_of(j) == "orders"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][4:] == [
        "--connect-timeout",
        "60s",
        "--activity-rate",
        "120",
        "--activity-rate-per-key",
        "2.5",
        "--weight",
        "cust-7=3",
    ]
    # Rolled back to "old": the limits are the ones the running build declares.
    assert container["image"].endswith("@" + OLD_DIGEST)


@pytest.mark.parametrize(
    ("limits", "complaint"),
    [
        ({"activityRate": -1}, "activityRate"),
        ({"activityRate": "fast"}, "activityRate"),
        ({"weights": {"gold": 0}}, "weights"),
        ({"burst": 3}, "burst"),
    ],
)
def test_a_bad_limit_is_refused_by_the_schema(
    helm: Helm, limits: dict[str, Any], complaint: str
) -> None:
    proc = helm.template_proc("dev", values=[{"queues": {"orders": {"limits": limits}}}])
    assert proc.returncode != 0
    assert complaint in proc.stderr


def test_the_hook_can_be_left_out(helm: Helm) -> None:
    docs = helm.template("dev", values=[{"limitsJob": {"enabled": False}}])
    assert not jobs_of(docs, "limits")
