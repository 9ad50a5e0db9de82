"""Chart hardening: the NetworkPolicy's peers, image digests, the Pod Security labelled
Namespace, the ServiceMonitor's limits, and secrets kept out of plain env."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from fleet_devtools import derived as fleet_sync
from helm.rendering import (
    CHART,
    DATABASE,
    KUBE_VERSIONS,
    PROD_DIGESTS,
    Doc,
    Helm,
    HelmFailed,
    by_queue,
    of_kind,
    pod_specs,
    queue_of,
    release_policy,
    validation_errors,
    worker_container,
)

# slow: helm renders the chart.
pytestmark = pytest.mark.slow

Render = Callable[[str], list[Doc]]

DIGEST = "sha256:" + "ab" * 32


def _policy(docs: list[Doc]) -> Doc:
    spec: Doc = release_policy(docs)["spec"]
    return spec


def _egress_to(spec: Doc, port: int) -> list[Any]:
    (rule,) = [r for r in spec["egress"] if any(p["port"] == port for p in r["ports"])]
    return list(rule["to"])


# -- NetworkPolicy ------------------------------------------------------------------------------


def test_network_policy_defaults_name_their_peers(rendered: Render) -> None:
    spec = _policy(rendered("prod"))
    # Metrics in from the Prometheus pods only, whatever their namespace is called.
    (ingress,) = spec["ingress"]
    assert ingress["from"] == [
        {
            "namespaceSelector": {},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    # Temporal out only to the namespace of the in-cluster frontend of temporal.address.
    assert _egress_to(spec, 7233) == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "temporal"}}}
    ]
    # DNS only to the cluster DNS pods.
    assert _egress_to(spec, 53) == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    # Every rule names its peers: no rule allows any address.
    assert all(rule.get("to") for rule in spec["egress"])


def test_network_policy_peers_are_configurable(helm: Helm) -> None:
    values = {
        "temporal": {"address": "temporal.example.com:443"},
        "networkPolicy": {
            "prometheus": {
                "namespaceSelector": {"matchLabels": {"team": "observability"}},
                # Helm merges maps into the defaults': null drops a default label.
                "podSelector": {"matchLabels": {"app": "vmagent", "app.kubernetes.io/name": None}},
            },
            "temporal": {"cidrs": ["10.20.0.0/16", "192.0.2.10/32"], "ports": [443, 7233]},
            "dns": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dns"}},
                "podSelector": {"matchLabels": {"app": "node-local-dns", "k8s-app": None}},
            },
        },
    }
    docs = helm.template("prod", values=[values])
    spec = _policy(docs)
    assert spec["ingress"][0]["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"team": "observability"}},
            "podSelector": {"matchLabels": {"app": "vmagent"}},
        }
    ]
    (temporal,) = [r for r in spec["egress"] if r["ports"][0]["port"] == 443]
    assert [p["port"] for p in temporal["ports"]] == [443, 7233]
    assert temporal["to"] == [
        {"ipBlock": {"cidr": "10.20.0.0/16"}},
        {"ipBlock": {"cidr": "192.0.2.10/32"}},
    ]
    assert _egress_to(spec, 53)[0]["podSelector"] == {"matchLabels": {"app": "node-local-dns"}}
    for kube_version in KUBE_VERSIONS:
        for policy in of_kind(docs, "NetworkPolicy"):
            assert not validation_errors(policy, kube_version)


def test_network_policy_refuses_an_unrestricted_external_address(helm: Helm) -> None:
    external = {"temporal": {"address": "temporal.example.com:7233"}}
    with pytest.raises(HelmFailed, match=r"networkPolicy\.temporal.*cidrs.*anyAddress"):
        helm.template("prod", values=[external])
    # Temporal Cloud: any address, on the port of temporal.address only.
    anywhere = {**external, "networkPolicy": {"temporal": {"anyAddress": True}}}
    (rule,) = [
        r for r in _policy(helm.template("prod", values=[anywhere]))["egress"] if "to" not in r
    ]
    assert rule["ports"] == [{"port": 7233, "protocol": "TCP"}]


# -- image digests ------------------------------------------------------------------------------


def test_image_digest_pins_the_reference(helm: Helm) -> None:
    docs = helm.template("staging", values=[{"queues": {"orders": {"image": {"digest": DIGEST}}}}])
    images = {q: worker_container(d)["image"] for q, d in by_queue(docs, "Deployment").items()}
    assert images["orders"].endswith(f":0.1.0@{DIGEST}")
    assert "@" not in images["agent"]


def test_required_digest_fails_naming_the_queue(helm: Helm) -> None:
    required = {"image": {"requireDigest": True}}
    with pytest.raises(HelmFailed, match=r"queue agent: image\.digest is required"):
        helm.template("staging", values=[required])
    queues = ["agent", "ingest", "notifications", "orders"]
    pinned = {"queues": {q: {"image": {"digest": DIGEST}} for q in queues}}
    docs = helm.template("staging", values=[required, pinned])
    for deployment in of_kind(docs, "Deployment"):
        assert worker_container(deployment)["image"].endswith(DIGEST)
    # The namespace Job borrows a pinned queue image, or needs its own digest.
    own_image = {"namespaceJob": {"image": {"repository": "ghcr.io/acme/fleet"}}}
    with pytest.raises(HelmFailed, match=r"namespaceJob: image\.digest is required"):
        helm.template("staging", values=[required, pinned, own_image])


# prod runs pinned images only: values-prod.yaml requires digests and carries none (a release
# passes them); the chart's tests and make helm-lint add the generated placeholders.
PLACEHOLDER = fleet_sync.PLACEHOLDER_DIGEST
PINNED = re.compile(r"^\S+:[A-Za-z0-9_][A-Za-z0-9_.-]*@sha256:[a-f0-9]{64}$")


def test_prod_values_require_digests_and_carry_none(helm: Helm) -> None:
    values = yaml.safe_load((CHART / "values-prod.yaml").read_text())
    assert values["image"]["requireDigest"] is True
    assert not any("digest" in v.get("image", {}) for v in values["queues"].values())
    # So values-prod.yaml alone never renders an image nobody chose: it refuses.
    proc = helm.run("template", "fleet-prod", str(CHART), "-f", str(CHART / "values-prod.yaml"))
    assert proc.returncode != 0
    assert "image.digest is required (image.requireDigest)" in proc.stderr


def test_the_placeholder_digests_cover_every_registered_queue() -> None:
    placeholders = yaml.safe_load((CHART / PROD_DIGESTS).read_text())["queues"]
    registered = yaml.safe_load((CHART / "files" / "queues.yaml").read_text())
    assert {q: v["image"]["digest"] for q, v in placeholders.items()} == {
        q: PLACEHOLDER for q in registered
    }


def test_every_prod_image_is_pinned(rendered: Render) -> None:
    images = [
        (f"{doc['kind']}/{doc['metadata']['name']}{where}", container["image"])
        for doc in rendered("prod")
        for where, spec in pod_specs(doc)
        for container in [*spec.get("initContainers", []), *spec["containers"]]
    ]
    assert images
    unpinned = [f"{where}: {image}" for where, image in images if not PINNED.match(image)]
    assert not unpinned, "\n".join(unpinned)


@pytest.mark.parametrize("queue", ["agent", "ingest", "notifications", "orders"])
def test_prod_refuses_a_queue_without_digest(helm: Helm, queue: str) -> None:
    proc = helm.template_proc("prod", values=[{"queues": {queue: {"image": {"digest": ""}}}}])
    assert proc.returncode != 0
    assert f"queue {queue}: image.digest is required (image.requireDigest)" in proc.stderr


def test_a_build_with_its_own_image_needs_its_own_digest(helm: Helm) -> None:
    """A build naming its own tag never inherits the queue's digest (that would pin another
    image under its tag): prod refuses it until the build has its own."""
    own_image: dict[str, str] = {"tag": "2.0.0"}
    builds: list[dict[str, object]] = [{"buildId": "b1"}, {"buildId": "b2", "image": own_image}]
    values = [DATABASE, {"queues": {"orders": {"builds": builds}}}]
    proc = helm.template_proc("prod", values=values)
    assert proc.returncode != 0
    assert "queue orders, build b2: image.digest is required" in proc.stderr
    assert "queues.orders.builds[].image.digest" in proc.stderr
    own_image["digest"] = DIGEST
    docs = helm.template("prod", values=values)
    images = sorted(
        worker_container(d)["image"] for d in of_kind(docs, "Deployment") if queue_of(d) == "orders"
    )
    # b1 runs the queue's own (pinned) image; b2 its own tag and digest.
    assert images == [
        f"ghcr.io/temporal-fleet/temporal-fleet-orders:0.1.0@{PLACEHOLDER}",
        f"ghcr.io/temporal-fleet/temporal-fleet-orders:2.0.0@{DIGEST}",
    ]
    # Without requireDigest (staging), such a build is unpinned, never mixed with the queue's.
    pinned_queue = {"queues": {"orders": {"image": {"digest": DIGEST}, "builds": builds[:1]}}}
    own_tag = {
        "queues": {"orders": {"builds": [*builds[:1], {"buildId": "b3", "image": {"tag": "3"}}]}}
    }
    docs = helm.template("staging", values=[DATABASE, pinned_queue, own_tag])
    images = sorted(
        worker_container(d)["image"] for d in of_kind(docs, "Deployment") if queue_of(d) == "orders"
    )
    assert images == [
        f"ghcr.io/temporal-fleet/temporal-fleet-orders:0.1.0@{DIGEST}",
        "ghcr.io/temporal-fleet/temporal-fleet-orders:3",
    ]


def test_malformed_digest_is_rejected(helm: Helm) -> None:
    proc = helm.template_proc("prod", values=[{"defaults": {"image": {"digest": "sha256:abc"}}}])
    assert proc.returncode != 0
    assert "digest" in proc.stderr


# -- Namespace with Pod Security Admission labels -----------------------------------------------


def test_no_namespace_object_by_default(rendered: Render) -> None:
    for env in ("dev", "staging", "prod"):
        assert not of_kind(rendered(env), "Namespace")


def test_namespace_enforces_the_restricted_standard(helm: Helm) -> None:
    docs = helm.template("prod", values=[{"namespace": {"create": True}}], namespace="fleet-prod")
    (namespace,) = of_kind(docs, "Namespace")
    assert namespace["metadata"]["name"] == "fleet-prod"
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"
    assert namespace["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert not validation_errors(namespace, KUBE_VERSIONS[-1])


# -- ServiceMonitor limits ----------------------------------------------------------------------


def test_service_monitor_caps_samples_and_keeps_the_registered_series(
    rendered: Render, registry: list[Any]
) -> None:
    (monitor,) = of_kind(rendered("prod"), "ServiceMonitor")
    assert monitor["spec"]["sampleLimit"] == 20000
    (endpoint,) = monitor["spec"]["endpoints"]
    keep, keep_types = endpoint["metricRelabelings"]
    assert keep["sourceLabels"] == ["task_queue"]
    assert keep["action"] == "keep"
    regex = re.compile(keep["regex"])
    for task_queue in ("agent-v1", "ingest-v1", "notifications-v1", "orders-v1", ""):
        assert regex.fullmatch(task_queue), task_queue
    for task_queue in ("orders-v2", "orders-v1-sticky", "other"):
        assert not regex.fullmatch(task_queue), task_queue
    # workflow_type: every registered workflow type (from the generated queue list), or none.
    assert keep_types["sourceLabels"] == ["workflow_type"]
    assert keep_types["action"] == "keep"
    types = re.compile(keep_types["regex"])
    registered = {t for q in registry for t in q.workflow_types}
    assert registered
    for workflow_type in [*registered, ""]:
        assert types.fullmatch(workflow_type), workflow_type
    for workflow_type in ("OrderWorkflowV2", "Order.Workflow", "probe"):
        assert not types.fullmatch(workflow_type), workflow_type


def test_service_monitor_keeps_only_enabled_queues_workflow_types(helm: Helm) -> None:
    docs = helm.template("prod", values=[{"queues": {"agent": {"enabled": False}}}])
    (monitor,) = of_kind(docs, "ServiceMonitor")
    keep_types = monitor["spec"]["endpoints"][0]["metricRelabelings"][1]
    assert not re.fullmatch(keep_types["regex"], "AgentWorkflow")
    assert re.fullmatch(keep_types["regex"], "OrderWorkflow")


def test_service_monitor_limits_are_configurable(helm: Helm) -> None:
    drop = {"sourceLabels": ["workflow_type"], "regex": "Debug.*", "action": "drop"}
    values = {
        "serviceMonitor": {
            "sampleLimit": 0,
            "keepRegisteredTaskQueuesOnly": False,
            "keepRegisteredWorkflowTypesOnly": False,
            "metricRelabelings": [drop],
        }
    }
    (monitor,) = of_kind(helm.template("prod", values=[values]), "ServiceMonitor")
    assert "sampleLimit" not in monitor["spec"]
    assert monitor["spec"]["endpoints"][0]["metricRelabelings"] == [drop]
    for kube_version in KUBE_VERSIONS:
        assert not validation_errors(monitor, kube_version)


# -- secrets out of plain env -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["AGENT_API_KEY", "GITHUB_TOKEN", "DB_PASSWORD", "WEBHOOK_SECRET", "signing_key"]
)
def test_secret_looking_env_names_are_refused(helm: Helm, name: str) -> None:
    proc = helm.template_proc("dev", values=[{"queues": {"agent": {"env": {name: "x"}}}}])
    assert proc.returncode != 0, f"{name}: rendered anyway"
    assert name in proc.stderr
    assert "extraEnv with valueFrom.secretKeyRef" in proc.stderr


def test_ordinary_env_names_still_render(helm: Helm) -> None:
    env = {"AGENT_MODEL": "m", "AGENT_KEYRING_PATH": "/k", "TOKEN_BUCKET_SIZE": "5"}
    docs = helm.template("dev", values=[{"queues": {"agent": {"env": env}}}])
    assert by_queue(docs, "Deployment")["agent"]


def test_agent_api_key_from_a_secret(helm: Helm) -> None:
    ref = {"secret": "agent-provider", "key": "api-key"}
    docs = helm.template(
        "prod", values=[{"queues": {"agent": {"secretEnv": {"AGENT_API_KEY": ref}}}}]
    )
    deployments = by_queue(docs, "Deployment")
    env = {e["name"]: e for e in worker_container(deployments["agent"]).get("env", [])}
    assert env["AGENT_API_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "agent-provider", "key": "api-key"}
    }
    assert "value" not in env["AGENT_API_KEY"]
    # Only the agent's workers get it, and no Secret is rendered.
    others = [worker_container(d).get("env", []) for q, d in deployments.items() if q != "agent"]
    assert all(e["name"] != "AGENT_API_KEY" for env_list in others for e in env_list)
    assert not of_kind(docs, "Secret")
    for kube_version in KUBE_VERSIONS:
        assert not validation_errors(deployments["agent"], kube_version)
