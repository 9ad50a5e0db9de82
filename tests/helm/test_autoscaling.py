"""Autoscaling by queue shape, and KEDA exactly as the workers connect.

Each queue declares its shape in the registry (Queue.shape: short, long-activities, batch);
`make sync` carries it into the chart (files/queues.yaml), which derives from it whether a
queue may scale to zero, its triggers, its cooldown and its scale-down behavior. KEDA's
Temporal scaler connects to Temporal as the workers do, or the chart refuses; and the chart
renders only what the KEDA version of autoscaling.keda.version can do.

The parameter names below are KEDA's own, read from its source (pkg/scalers/temporal_scaler.go
and prometheus_scaler.go, the `keda:"name=..."` tags of each release); every rendered object is
validated against the Kubernetes schemas or the vendored CRDs.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from fleet_devtools import derived as fleet_sync
from helm.rendering import (
    CHART,
    DATABASE,
    Doc,
    Helm,
    assert_schema_valid,
    by_queue,
    of_kind,
    queue_of,
)

# slow: helm renders the chart.
pytestmark = pytest.mark.slow

# The Temporal scaler's trigger metadata, per KEDA release (new names only).
TEMPORAL_METADATA = {
    "2.17.0": {
        "endpoint",
        "namespace",
        "activationTargetQueueSize",
        "targetQueueSize",
        "taskQueue",
        "queueTypes",
        "buildId",
        "selectAllActive",
        "selectUnversioned",
        "minConnectTimeout",
        "unsafeSsl",
    },
    "2.18.0": {"tlsServerName"},
    "2.20.0": {"workerDeploymentName", "workerDeploymentBuildId"},
    "2.21.0": {"includeRunningWorkflowCount", "workflowTaskQueueForCount", "enableTLS"},
}
# The Temporal scaler's auth parameters (TriggerAuthentication), the same in every release.
TEMPORAL_AUTH = {"apiKey", "cert", "key", "keyPassword", "ca"}
# The Prometheus scaler's trigger metadata, the same in 2.17 to 2.20.
PROMETHEUS_METADATA = {
    "serverAddress",
    "query",
    "queryParameters",
    "threshold",
    "activationThreshold",
    "namespace",
    "customHeaders",
    "ignoreNullValues",
    "unsafeSsl",
    "awsRegion",
    "timeout",
}

PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
PROMETHEUS = {"autoscaling": {"keda": {"prometheus": {"serverAddress": PROMETHEUS_URL}}}}
SERVICE_MONITOR = {"serviceMonitor": {"enabled": True}}


def keda(queue: str, **autoscaling: Any) -> dict[str, Any]:
    """Values scaling one queue with KEDA (minReplicas 0 unless given)."""
    spec = {"kind": "keda", "minReplicas": 0, "maxReplicas": 10, **autoscaling}
    return {"queues": {queue: {"autoscaling": spec}}}


def version(v: str) -> dict[str, Any]:
    return {"autoscaling": {"keda": {"version": v}}}


def temporal_params(v: str) -> set[str]:
    minor = tuple(int(p) for p in v.split(".")[:2])
    return {
        name
        for since, names in TEMPORAL_METADATA.items()
        if tuple(int(p) for p in since.split(".")[:2]) <= minor
        for name in names
    }


def render(helm: Helm, *values: dict[str, Any], env: str = "staging") -> list[Doc]:
    """staging (a database, the ServiceMonitor on, no TLS) with ``values``; every object valid."""
    docs = helm.template(env, values=[DATABASE, *values])
    assert_schema_valid(*docs)
    return docs


def refused(helm: Helm, *values: dict[str, Any], env: str = "staging") -> str:
    proc = helm.template_proc(env, values=[DATABASE, *values])
    assert proc.returncode != 0, "rendered anyway"
    return proc.stderr


def scaled_object(docs: list[Doc], queue: str) -> Doc:
    (so,) = [d for d in of_kind(docs, "ScaledObject") if queue_of(d) == queue]
    return so


def triggers(so: Doc) -> dict[str, Doc]:
    return {t["type"]: t for t in so["spec"]["triggers"]}


def check_keda_names(docs: list[Doc], v: str) -> None:
    """Every trigger parameter and auth parameter is one KEDA ``v`` reads."""
    for so in of_kind(docs, "ScaledObject"):
        for trigger in so["spec"]["triggers"]:
            known = temporal_params(v) if trigger["type"] == "temporal" else PROMETHEUS_METADATA
            assert set(trigger["metadata"]) <= known, (trigger["metadata"], v)
            assert all(isinstance(value, str) for value in trigger["metadata"].values())
    for auth in of_kind(docs, "TriggerAuthentication"):
        assert {r["parameter"] for r in auth["spec"]["secretTargetRef"]} <= TEMPORAL_AUTH


# -- the shape: declared in the registry, generated into the chart ------------------------------


def test_each_queue_declares_its_shape(registry: list[Any]) -> None:
    from workerkit import discover_queues

    assert {q.name: q.shape for q in registry} == {
        "agent": "long-activities",
        "ingest": "batch",
        "notifications": "short",
        "orders": "long-activities",
    }
    assert {n: q.shape for n, q in discover_queues().items()} == {q.name: q.shape for q in registry}
    generated = yaml.safe_load((CHART / "files" / "queues.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    for q in registry:
        assert generated[q.name]["shape"] == q.shape
    assert schema["definitions"]["queue"]["properties"]["shape"]["enum"] == list(fleet_sync.SHAPES)


def test_the_shape_is_validated_and_defaults_to_long_activities() -> None:
    from temporalio import activity
    from workerkit import ConfigurationError, Queue
    from workerkit._registry import SHAPES

    @activity.defn
    async def noop() -> None:
        """An activity for declarations under test."""

    assert Queue(name="plain", activities=[noop]).shape == "long-activities"
    assert fleet_sync.DEFAULT_SHAPE == "long-activities"
    assert tuple(SHAPES) == tuple(fleet_sync.SHAPES)
    with pytest.raises(ConfigurationError, match="shape 'huge' is not one of short"):
        Queue(name="plain", activities=[noop], shape="huge")  # type: ignore[arg-type]


def test_the_schema_refuses_a_shape_the_registry_does_not_declare(helm: Helm) -> None:
    stderr = refused(helm, {"queues": {"ingest": {"shape": "short"}}})
    assert "shape" in stderr


# -- scale to zero: only where in-flight work cannot be cut -------------------------------------


def test_batch_queue_without_prometheus_never_scales_to_zero(helm: Helm) -> None:
    stderr = refused(helm, keda("ingest"))
    assert "queue ingest (shape batch): autoscaling.minReplicas 0" in stderr
    assert "autoscaling.keda.prometheus.serverAddress" in stderr
    assert "autoscaling.minReplicas >= 1" in stderr
    # With one replica kept, it scales on its backlog alone.
    so = scaled_object(render(helm, keda("ingest", minReplicas=1)), "ingest")
    assert so["spec"]["minReplicaCount"] == 1
    assert list(triggers(so)) == ["temporal"]


def test_batch_queue_with_prometheus_scales_to_zero_once_no_slot_is_in_use(helm: Helm) -> None:
    docs = render(helm, PROMETHEUS, keda("ingest"))
    so = scaled_object(docs, "ingest")
    spec = so["spec"]
    assert spec["minReplicaCount"] == 0
    temporal, slots = spec["triggers"]
    # The backlog trigger comes first (KEDA names its metric s0-temporal-..., which the
    # TemporalNoWorkerPolling alert reads), the slots in use second.
    assert temporal["type"] == "temporal" and temporal["metadata"]["taskQueue"] == "ingest-v1"
    assert slots == {
        "type": "prometheus",
        "name": "slots-in-use",
        "metricType": "AverageValue",
        "metadata": {
            "serverAddress": PROMETHEUS_URL,
            "query": (
                'sum(temporal_worker_task_slots_used{job="temporal-workers",'
                'kubernetes_namespace="fleet-staging",task_queue="ingest-v1"})'
            ),
            "threshold": "50",
            "activationThreshold": "0",
            "ignoreNullValues": "true",
        },
    }
    # Drain time: shutdownTimeoutSeconds 30 + 15. Batch: 900s cooldown and window, one pod
    # at a time, a drain apart at least.
    assert spec["cooldownPeriod"] == 900
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == {
        "scaleDown": {
            "stabilizationWindowSeconds": 900,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
        }
    }
    check_keda_names(docs, "2.20")


def test_long_activities_queue_follows_the_same_rule(helm: Helm) -> None:
    assert "queue orders (shape long-activities): autoscaling.minReplicas 0" in refused(
        helm, keda("orders")
    )
    so = scaled_object(render(helm, PROMETHEUS, keda("orders")), "orders")
    assert list(triggers(so)) == ["temporal", "prometheus"]
    assert so["spec"]["cooldownPeriod"] == 600
    # A longer drain lengthens the window, the cooldown and the policy's period.
    longer = {"queues": {"orders": {"shutdownTimeoutSeconds": 1200}}}
    spec = scaled_object(render(helm, PROMETHEUS, keda("orders"), longer), "orders")["spec"]
    assert spec["cooldownPeriod"] == 1215
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"] == {
        "stabilizationWindowSeconds": 1215,
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 1215}],
    }


def test_short_queue_scales_to_zero_on_its_backlog(helm: Helm) -> None:
    for values in ([keda("notifications")], [PROMETHEUS, keda("notifications")]):
        so = scaled_object(render(helm, *values), "notifications")
        assert so["spec"]["minReplicaCount"] == 0
        assert list(triggers(so)) == ["temporal"]
        assert so["spec"]["cooldownPeriod"] == 300
        assert so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == {
            "scaleDown": {
                "stabilizationWindowSeconds": 300,
                "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
            }
        }


def test_slots_trigger_needs_the_service_monitor(helm: Helm) -> None:
    stderr = refused(helm, PROMETHEUS, keda("ingest"), {"serviceMonitor": {"enabled": False}})
    assert "queue ingest (shape batch): its slots-in-use trigger" in stderr
    assert "serviceMonitor.enabled" in stderr


def test_slots_trigger_of_builds_and_of_the_worker_controller(helm: Helm) -> None:
    builds = {
        "queues": {
            "ingest": {
                "builds": [{"buildId": "b1"}, {"buildId": "b2"}],
                "autoscaling": {"kind": "keda", "minReplicas": 0},
            }
        }
    }
    docs = render(helm, PROMETHEUS, builds)
    queries = sorted(
        triggers(so)["prometheus"]["metadata"]["query"]
        for so in of_kind(docs, "ScaledObject")
        if queue_of(so) == "ingest"
    )
    # Each build counts its own pods' slots (build_id, from the ServiceMonitor's relabeling).
    assert queries == [
        'sum(temporal_worker_task_slots_used{job="temporal-workers",'
        f'kubernetes_namespace="fleet-staging",task_queue="ingest-v1",build_id="{b}"}})'
        for b in ("b1", "b2")
    ]
    # One template serves every version: it counts the task queue's slots, every version's.
    docs = render(helm, PROMETHEUS, builds, {"workerController": {"enabled": True}})
    (wrt,) = [
        w
        for w in of_kind(docs, "WorkerResourceTemplate")
        if w["spec"]["template"]["metadata"]["labels"]["temporal-fleet/queue"] == "ingest"
    ]
    spec = wrt["spec"]["template"]["spec"]
    assert spec["minReplicaCount"] == 0
    assert [t["type"] for t in spec["triggers"]] == ["temporal", "prometheus"]
    assert spec["triggers"][1]["metadata"]["query"] == (
        'sum(temporal_worker_task_slots_used{job="temporal-workers",'
        'kubernetes_namespace="fleet-staging",task_queue="ingest-v1"})'
    )
    # Without Prometheus, a controller's batch queue keeps a replica too.
    stderr = refused(helm, builds, {"workerController": {"enabled": True}})
    assert "queue ingest, build b2 (shape batch): autoscaling.minReplicas 0" in stderr


def test_prod_scales_ingest_to_zero_through_its_slots(rendered: Any) -> None:
    docs = rendered("prod")
    so = scaled_object(docs, "ingest")
    assert so["spec"]["minReplicaCount"] == 0
    assert triggers(so)["prometheus"]["metadata"]["serverAddress"].startswith("http://")
    check_keda_names(docs, "2.20")


# -- cooldown and scale-down: drains finish ------------------------------------------------------


def test_cooldown_and_window_below_the_drain_time_are_refused(helm: Helm) -> None:
    stderr = refused(helm, keda("notifications", keda={"cooldownPeriod": 30}))
    assert "queue notifications (shape short): autoscaling.keda.cooldownPeriod (30)" in stderr
    assert "terminationGracePeriodSeconds (45)" in stderr
    # Irrelevant above zero replicas: KEDA's cooldown applies only to scaling to zero.
    render(helm, keda("notifications", minReplicas=1, keda={"cooldownPeriod": 30}))
    short_window = {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 10}}}
    stderr = refused(helm, keda("notifications", keda=short_window))
    assert "autoscaling.keda.behavior.scaleDown.stabilizationWindowSeconds (10)" in stderr
    stderr = refused(
        helm,
        {"queues": {"orders": {"autoscaling": {"hpa": short_window}}}},
    )
    assert "queue orders (shape long-activities): autoscaling.hpa.behavior.scaleDown" in stderr


def test_explicit_behavior_merges_over_the_shape(helm: Helm) -> None:
    up = {"scaleUp": {"policies": [{"type": "Pods", "value": 8, "periodSeconds": 15}]}}
    spec = scaled_object(
        render(helm, keda("notifications", keda={"behavior": up})), "notifications"
    )["spec"]
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"] == up["scaleUp"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    # An HPA on CPU gets its shape's scale-down too (staging's orders: long-activities).
    hpa = by_queue(render(helm), "HorizontalPodAutoscaler")["orders"]
    assert hpa["spec"]["behavior"] == {
        "scaleDown": {
            "stabilizationWindowSeconds": 600,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
        }
    }


# -- KEDA's connection: exactly the workers' --------------------------------------------------

CA = {"caSecret": "temporal-ca"}
MTLS = {"clientCertSecret": "temporal-client-tls"}
API_KEY = {"apiKey": {"existingSecret": "temporal-cloud", "key": "api-key"}}
NOTIFY = keda("notifications", minReplicas=1)


def tls(**settings: Any) -> dict[str, Any]:
    return {"temporal": {"tls": settings}}


def auth_of(docs: list[Doc]) -> dict[str, tuple[str, str]]:
    (auth,) = of_kind(docs, "TriggerAuthentication")
    so = scaled_object(docs, "notifications")
    assert triggers(so)["temporal"]["authenticationRef"] == {"name": auth["metadata"]["name"]}
    return {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}


def test_plaintext_like_the_workers(helm: Helm) -> None:
    docs = render(helm, NOTIFY)
    assert not of_kind(docs, "TriggerAuthentication")
    assert "authenticationRef" not in triggers(scaled_object(docs, "notifications"))["temporal"]


@pytest.mark.parametrize(
    "settings",
    [{"enabled": True}, {"enabled": True, **CA}, CA],
    ids=["system CAs", "CA", "CA without enabled"],
)
def test_tls_without_client_credentials_is_refused(helm: Helm, settings: dict[str, Any]) -> None:
    """KEDA's Temporal scaler turns TLS on only with cert+key or an API key: with a CA alone
    it would connect in plaintext, and no parameter (ca, unsafeSsl) changes that."""
    stderr = refused(helm, NOTIFY, tls(**settings))
    assert "KEDA (autoscaling.kind keda: queue notifications)" in stderr
    assert "it would connect in plaintext" in stderr
    # Queues scaled otherwise are unaffected.
    render(helm, tls(**settings))


def test_mutual_tls(helm: Helm) -> None:
    docs = render(helm, NOTIFY, tls(**MTLS), version("2.17"))
    assert auth_of(docs) == {
        "cert": ("temporal-client-tls", "tls.crt"),
        "key": ("temporal-client-tls", "tls.key"),
    }
    check_keda_names(docs, "2.17")
    docs = render(helm, NOTIFY, tls(**MTLS, **CA), version("2.17"))
    assert auth_of(docs) == {
        "cert": ("temporal-client-tls", "tls.crt"),
        "key": ("temporal-client-tls", "tls.key"),
        "ca": ("temporal-ca", "ca.crt"),
    }
    check_keda_names(docs, "2.17")


def test_api_key(helm: Helm) -> None:
    cloud = {"temporal": {"address": "fleet.example.tmprl.cloud:7233", **API_KEY}}
    egress = {"networkPolicy": {"temporal": {"anyAddress": True}}}
    for v in ("2.17.2", "2.18", "2.19", "2.20"):
        docs = render(helm, NOTIFY, cloud, egress, version(v))
        assert auth_of(docs) == {"apiKey": ("temporal-cloud", "api-key")}
        check_keda_names(docs, v)
    # 2.17.0 and 2.17.1 dial without TLS with an API key ("2.17" is 2.17.0).
    for v in ("2.17", "2.17.1"):
        stderr = refused(helm, NOTIFY, cloud, egress, version(v))
        assert (
            f"KEDA {v if v.count('.') == 2 else v + '.0'} sends the API key without TLS" in stderr
        )


def test_api_key_with_a_private_ca(helm: Helm) -> None:
    values = [NOTIFY, {"temporal": API_KEY}, tls(**CA)]
    assert "trusts only the system CAs" in refused(helm, *values, version("2.18"))
    stderr = refused(helm, *values, version("2.19"))
    assert "ignores `ca`" in stderr and "--ca-dir" in stderr
    trusted = {"autoscaling": {"keda": {"version": "2.19", "operatorTrustsServerCA": True}}}
    docs = render(helm, *values, trusted)
    # The CA is the operator's own (--ca-dir): `ca` would be ignored, so it is not given.
    assert auth_of(docs) == {"apiKey": ("temporal-cloud", "api-key")}


def test_api_key_with_mutual_tls(helm: Helm) -> None:
    docs = render(helm, NOTIFY, {"temporal": API_KEY}, tls(**MTLS, **CA), version("2.17"))
    assert auth_of(docs) == {
        "apiKey": ("temporal-cloud", "api-key"),
        "cert": ("temporal-client-tls", "tls.crt"),
        "key": ("temporal-client-tls", "tls.key"),
        "ca": ("temporal-ca", "ca.crt"),
    }


def test_tls_server_name(helm: Helm) -> None:
    name = tls(**MTLS, **CA, serverName="frontend.temporal.internal")
    docs = render(helm, NOTIFY, name, version("2.18"))
    trigger = triggers(scaled_object(docs, "notifications"))["temporal"]
    assert trigger["metadata"]["tlsServerName"] == "frontend.temporal.internal"
    check_keda_names(docs, "2.18")
    stderr = refused(helm, NOTIFY, name, version("2.17.3"))
    assert "tlsServerName, which KEDA has from 2.18.0" in stderr


# -- KEDA versions: nothing rendered that the version lacks -------------------------------------


@pytest.mark.parametrize("bad", ["2.16", "3.0", "latest", "2.17.x", "v2.20"])
def test_the_schema_refuses_an_unsupported_version(helm: Helm, bad: str) -> None:
    assert "version" in refused(helm, version(bad))


def test_builds_per_version_need_keda_2_20(helm: Helm) -> None:
    builds = {"queues": {"notifications": {"builds": [{"buildId": "b1"}, {"buildId": "b2"}]}}}
    values = [keda("notifications", minReplicas=1), builds]
    stderr = refused(helm, *values, version("2.19"))
    assert "queue notifications, build b1 (shape short)" in stderr
    assert "KEDA has from 2.20.0" in stderr and "versionBacklog false" in stderr
    # Without version-scoped backlog, 2.19 can: only the target scales, on the task queue.
    flat = {"defaults": {"autoscaling": {"keda": {"versionBacklog": False}}}}
    docs = render(helm, *values, flat, version("2.19"))
    check_keda_names(docs, "2.19")
    check_keda_names(render(helm, *values, version("2.20")), "2.20")


def test_include_running_workflow_count_needs_keda_2_21(helm: Helm) -> None:
    explicit = keda("ingest", minReplicas=1, keda={"includeRunningWorkflowCount": True})
    stderr = refused(helm, explicit, version("2.20"))
    assert "includeRunningWorkflowCount needs KEDA 2.21" in stderr
    # 2.21: on by default for long-activities and batch queues, never for short ones.
    docs = render(
        helm,
        PROMETHEUS,
        keda("ingest"),
        keda("notifications"),
        {"queues": {"orders": {"autoscaling": {"kind": "keda", "minReplicas": 1}}}},
        version("2.21"),
    )
    running = {
        queue_of(so): triggers(so)["temporal"]["metadata"].get("includeRunningWorkflowCount")
        for so in of_kind(docs, "ScaledObject")
    }
    assert running == {"ingest": "true", "notifications": None, "orders": "true"}
    check_keda_names(docs, "2.21")
    off = keda("ingest", minReplicas=1, keda={"includeRunningWorkflowCount": False})
    so = scaled_object(render(helm, off, version("2.21")), "ingest")
    assert "includeRunningWorkflowCount" not in triggers(so)["temporal"]["metadata"]


# -- HPA on slot utilisation (prometheus-adapter) ------------------------------------------------

SLOTS_HPA = {
    "queues": {
        "notifications": {
            "autoscaling": {
                "kind": "hpa",
                "minReplicas": 2,
                "maxReplicas": 8,
                "hpa": {"targetCPUUtilizationPercentage": 0, "targetSlotUtilisationPercentage": 80},
            }
        }
    }
}


def adapter_rule() -> dict[str, Any]:
    """The prometheus-adapter rule documented in the chart README: its Helm chart's
    rules.external (the adapter's externalRules)."""
    readme = (CHART / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)
    (block,) = [b for b in blocks if "rules:" in b and "external:" in b]
    (rule,) = yaml.safe_load(block)["rules"]["external"]
    return dict(rule)


def test_hpa_on_slot_utilisation(helm: Helm) -> None:
    docs = render(helm, SLOTS_HPA)
    hpa = by_queue(docs, "HorizontalPodAutoscaler")["notifications"]
    assert hpa["spec"]["metrics"] == [
        {
            "type": "External",
            "external": {
                "metric": {
                    "name": "temporal_worker_task_slots_utilisation",
                    "selector": {
                        "matchLabels": {
                            "namespace": "fleet-staging",
                            "task_queue": "notifications-v1",
                            "worker_type": "ActivityWorker",
                        }
                    },
                },
                "target": {"type": "Value", "value": "800m"},
            },
        }
    ]
    # Beside CPU, and on another worker type.
    both = {"hpa": {"targetCPUUtilizationPercentage": 70, "slotWorkerType": "WorkflowWorker"}}
    docs = render(helm, SLOTS_HPA, {"queues": {"notifications": {"autoscaling": both}}})
    metrics = by_queue(docs, "HorizontalPodAutoscaler")["notifications"]["spec"]["metrics"]
    assert [m["type"] for m in metrics] == ["Resource", "External"]
    assert metrics[1]["external"]["metric"]["selector"]["matchLabels"]["worker_type"] == (
        "WorkflowWorker"
    )


def test_the_documented_adapter_rule_serves_that_metric() -> None:
    rule = adapter_rule()
    recording = "task_queue_worker_type:temporal_worker_task_slots:utilisation"
    assert rule["seriesQuery"] == f'{{__name__="{recording}",task_queue!="",worker_type!=""}}'
    assert rule["name"] == {
        "matches": f"^{recording}$",
        "as": "temporal_worker_task_slots_utilisation",
    }
    assert rule["resources"] == {"namespaced": False}
    assert "<<.Series>>{<<.LabelMatchers>>}" in rule["metricsQuery"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["autoscaling"]["prometheusAdapter"]["slotUtilisationMetric"] == rule["name"]["as"]
    # The recording rule exists, with the labels the HPA selects on.
    rules = yaml.safe_load((CHART / "files/prometheus/rules/temporal-fleet.yml").read_text())
    (record,) = [r for g in rules["groups"] for r in g["rules"] if r.get("record") == recording]
    assert "by (namespace, task_queue, worker_type)" in record["expr"]


def test_slot_utilisation_is_refused_for_versioned_queues(helm: Helm) -> None:
    builds = {"queues": {"notifications": {"builds": [{"buildId": "b1"}, {"buildId": "b2"}]}}}
    stderr = refused(helm, SLOTS_HPA, builds)
    assert "queue notifications, build b1 (shape short)" in stderr
    assert "targetSlotUtilisationPercentage" in stderr
