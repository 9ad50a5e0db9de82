"""The chart, rendered by the real helm for each environment and checked object by object.

Built-in kinds are validated strictly (unknown fields rejected) against the Kubernetes schemas of
kubernetes-validate for the oldest and newest targeted Kubernetes; ServiceMonitor, PrometheusRule,
ScaledObject and TriggerAuthentication against their CRDs' schemas (tests/helm/crds).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from helm.rendering import (
    CHART,
    ENVIRONMENTS,
    FIXTURE_DEPLOY,
    KUBE_VERSIONS,
    RENDER_KUBE_VERSION,
    Doc,
    Helm,
    HelmFailed,
    by_queue,
    component,
    config_of,
    hook_annotations,
    jobs_of,
    named,
    of_kind,
    queue_of,
    release_policy,
    validation_errors,
    worker_container,
)

# slow: helm lints and renders the chart.
pytestmark = pytest.mark.slow

Render = Callable[[str], list[Doc]]

RETENTION = {"dev": "3d", "staging": "7d", "prod": "30d"}


# -- helm lint and schema validation of every object --------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_lint_strict(helm: Helm, env: str) -> None:
    proc = helm.run(
        "lint",
        "--strict",
        str(CHART),
        "-f",
        str(CHART / f"values-{env}.yaml"),
        "--namespace",
        f"fleet-{env}",
        "--kube-version",
        RENDER_KUBE_VERSION,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_rendered_object_is_valid(rendered: Render, env: str, kube_version: str) -> None:
    docs = rendered(env)
    assert docs
    keys = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(keys) == len(set(keys)), "two objects share a kind and name"
    errors = [
        f"{doc['kind']}/{doc['metadata']['name']}: {error}"
        for doc in docs
        for error in validation_errors(doc, kube_version)
    ]
    assert not errors, "\n".join(errors)


def test_validation_rejects_unknown_and_invalid_fields(rendered: Render) -> None:
    """The validators are strict: a misspelt field in any kind fails (guards a vacuous check)."""
    docs = rendered("prod")
    broken: dict[str, Callable[[Doc], object]] = {
        "Deployment": lambda d: d["spec"].update(replica=1),
        "ConfigMap": lambda d: d.update(date={}),
        "NetworkPolicy": lambda d: d["spec"].update(podSelectors={}),
        "ScaledObject": lambda d: d["spec"].update(minReplicaCount=30),
        "TriggerAuthentication": lambda d: d["spec"]["secretTargetRef"][0].pop("key"),
        "ServiceMonitor": lambda d: d["spec"]["endpoints"][0].update(prot="x"),
        "HorizontalPodAutoscaler": lambda d: d["spec"].update(minReplicas="two"),
    }
    for kind, breaker in broken.items():
        doc = copy.deepcopy(of_kind(docs, kind)[0])
        assert not validation_errors(doc, KUBE_VERSIONS[-1]), kind
        breaker(doc)
        assert validation_errors(doc, KUBE_VERSIONS[-1]), f"a broken {kind} passed validation"


# -- one Deployment per queue, defaults and overrides -------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_one_deployment_per_registered_queue(
    rendered: Render, registry: list[Any], env: str
) -> None:
    docs = rendered(env)
    deployments = by_queue(docs, "Deployment")
    assert len(of_kind(docs, "Deployment")) == len(registry)
    assert sorted(deployments) == [q.name for q in registry]
    for q in registry:
        deployment = deployments[q.name]
        container = worker_container(deployment)
        assert container["command"] == ["fleet", "worker", q.name]
        assert container["image"].startswith(f"ghcr.io/temporal-fleet/temporal-fleet-{q.name}:")
        assert deployment["metadata"]["annotations"]["temporal-fleet/task-queue"] == q.task_queue
        # Each queue has its own ConfigMap, Service and pods selected by its own labels.
        assert config_of(docs, deployment)["TEMPORAL_ADDRESS"]
        assert (
            by_queue(docs, "Service")[q.name]["spec"]["selector"]
            == (deployment["spec"]["selector"]["matchLabels"])
        )


def _queue_config(docs: list[Doc], queue: str) -> dict[str, str]:
    return config_of(docs, by_queue(docs, "Deployment")[queue])


def test_per_queue_overrides_win_over_defaults(helm: Helm, fixture_chart: Path) -> None:
    defaults = {
        "replicas": 3,
        "image": {"tag": "1.0.0"},
        "worker": {"logLevel": "info", "maxPollers": 4},
        "env": {"SHARED": "from-defaults", "OVERRIDDEN": "from-defaults"},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "pdb": {"enabled": True},
    }
    alpha = {
        "replicas": 0,  # zero and false override too (sprig's merge would keep the default)
        "pdb": {"enabled": False},
        "image": {"repository": "registry.example/custom/alpha", "tag": "2.0.0"},
        "command": ["python", "-m", "alpha"],
        "worker": {"logLevel": "warning"},
        "env": {"OVERRIDDEN": "from-alpha"},
        "resources": {"requests": {"cpu": "2"}},
        "shutdownTimeoutSeconds": 90,
    }
    docs = helm.template(
        values=[{"defaults": defaults, "queues": {"alpha": alpha}}], chart=fixture_chart
    )
    deployments = by_queue(docs, "Deployment")
    a, b = deployments["alpha"], deployments["beta"]

    assert a["spec"]["replicas"] == 0
    assert b["spec"]["replicas"] == 3
    assert worker_container(a)["image"] == "registry.example/custom/alpha:2.0.0"
    assert worker_container(b)["image"] == "ghcr.io/temporal-fleet/temporal-fleet-beta:1.0.0"
    assert worker_container(a)["command"] == ["python", "-m", "alpha"]
    assert worker_container(b)["command"] == ["fleet", "worker", "beta"]
    # Maps merge key by key: alpha's cpu request wins, the default memory request stays.
    assert worker_container(a)["resources"]["requests"] == {"cpu": "2", "memory": "128Mi"}
    assert worker_container(b)["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}

    alpha_env, beta_env = _queue_config(docs, "alpha"), _queue_config(docs, "beta")
    assert alpha_env["WORKER_LOG_LEVEL"] == "warning"
    assert beta_env["WORKER_LOG_LEVEL"] == "info"
    assert alpha_env["WORKER_MAX_POLLERS"] == beta_env["WORKER_MAX_POLLERS"] == "4"
    assert alpha_env["OVERRIDDEN"] == "from-alpha"
    assert beta_env["OVERRIDDEN"] == alpha_env["SHARED"] == "from-defaults"
    assert alpha_env["WORKER_SHUTDOWN_TIMEOUT"] == "90s"
    assert beta_env["WORKER_SHUTDOWN_TIMEOUT"] == "30s"
    # Unset tuning (null) leaves the queue's declared tuning in charge.
    assert "WORKER_MAX_CONCURRENT_ACTIVITIES" not in beta_env
    assert a["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 105
    assert sorted(by_queue(docs, "PodDisruptionBudget")) == ["beta"]


def test_disabled_queue_renders_nothing(helm: Helm, fixture_chart: Path) -> None:
    docs = helm.template(values=[{"queues": {"beta": {"enabled": False}}}], chart=fixture_chart)
    assert {queue_of(d) for d in docs if "temporal-fleet/queue" in d["metadata"]["labels"]} == {
        "alpha"
    }


# -- autoscaling: fixed, HPA or KEDA, per queue -------------------------------------------------


def test_autoscaler_chosen_per_queue(helm: Helm, fixture_chart: Path) -> None:
    values = {
        "temporal": {
            "address": "fleet.example.tmprl.cloud:7233",
            "namespace": "fleet.example",
            "apiKey": {"existingSecret": "temporal-cloud", "key": "api-key"},
        },
        # Temporal Cloud's addresses change: no CIDR to restrict the egress to.
        "networkPolicy": {"temporal": {"anyAddress": True}},
        "queues": {
            "alpha": {"autoscaling": {"kind": "keda", "minReplicas": 0, "maxReplicas": 7}},
            "beta": {"autoscaling": {"kind": "hpa", "minReplicas": 2, "maxReplicas": 4}},
        },
    }
    docs = helm.template(values=[values], chart=fixture_chart)
    deployments = by_queue(docs, "Deployment")
    assert sorted(by_queue(docs, "ScaledObject")) == ["alpha"]
    assert sorted(by_queue(docs, "HorizontalPodAutoscaler")) == ["beta"]
    # An autoscaled Deployment leaves the replica count to its autoscaler.
    assert "replicas" not in deployments["alpha"]["spec"]
    assert "replicas" not in deployments["beta"]["spec"]

    so = by_queue(docs, "ScaledObject")["alpha"]
    assert so["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployments["alpha"]["metadata"]["name"],
    }
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (0, 7)
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "temporal"
    # Every parameter of KEDA's Temporal scaler is explicit, queueTypes included.
    assert trigger["metadata"] == {
        "endpoint": "fleet.example.tmprl.cloud:7233",
        "namespace": "fleet.example",
        "taskQueue": "alpha-v1",
        "targetQueueSize": "5",
        "activationTargetQueueSize": "0",
        "queueTypes": "workflow,activity",
    }
    # KEDA authenticates with the workers' own Secret.
    (auth,) = of_kind(docs, "TriggerAuthentication")
    assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "apiKey", "name": "temporal-cloud", "key": "api-key"}
    ]
    (api_key,) = worker_container(deployments["alpha"])["env"]
    assert api_key == {
        "name": "TEMPORAL_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "temporal-cloud", "key": "api-key"}},
    }

    hpa = by_queue(docs, "HorizontalPodAutoscaler")["beta"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployments["beta"]["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        }
    ]
    for doc in docs:
        assert not validation_errors(doc, KUBE_VERSIONS[0]), doc["kind"]


def test_environments_scale_each_queue_their_own_way(rendered: Render) -> None:
    dev = rendered("dev")
    assert not of_kind(dev, "HorizontalPodAutoscaler") and not of_kind(dev, "ScaledObject")
    assert {d["spec"]["replicas"] for d in of_kind(dev, "Deployment")} == {1}

    staging = rendered("staging")
    assert sorted(by_queue(staging, "HorizontalPodAutoscaler")) == ["orders"]
    assert not of_kind(staging, "ScaledObject")

    prod = rendered("prod")
    assert sorted(by_queue(prod, "ScaledObject")) == ["ingest", "orders"]
    assert sorted(by_queue(prod, "HorizontalPodAutoscaler")) == ["notifications"]
    assert by_queue(prod, "Deployment")["agent"]["spec"]["replicas"] == 3
    assert by_queue(prod, "ScaledObject")["ingest"]["spec"]["minReplicaCount"] == 0
    orders = by_queue(prod, "ScaledObject")["orders"]["spec"]["triggers"][0]["metadata"]
    assert (orders["taskQueue"], orders["targetQueueSize"]) == ("orders-v1", "10")


# -- environments: namespaces, the namespace hook -----------------------------------------------


def test_each_environment_has_its_own_namespaces(rendered: Render) -> None:
    temporal_namespaces = set()
    for env in ENVIRONMENTS:
        docs = rendered(env)
        assert {d["metadata"]["namespace"] for d in docs} == {f"fleet-{env}"}
        namespaces = {config["TEMPORAL_NAMESPACE"] for config in _all_configs(docs)}
        assert namespaces == {f"fleet-{env}"}
        (job,) = jobs_of(docs, "namespace-job")
        command = job["spec"]["template"]["spec"]["containers"][0]["command"]
        expected = ["fleet", "namespace", "ensure", f"fleet-{env}", "--retention", RETENTION[env]]
        assert command[:6] == expected
        for so in of_kind(docs, "ScaledObject"):
            assert so["spec"]["triggers"][0]["metadata"]["namespace"] == f"fleet-{env}"
        temporal_namespaces |= namespaces
    assert len(temporal_namespaces) == len(ENVIRONMENTS)


def _all_configs(docs: list[Doc]) -> list[dict[str, str]]:
    return [config_of(docs, d) for d in of_kind(docs, "Deployment")]


def test_namespace_hook_job_runs_before_the_workers(helm: Helm, rendered: Render) -> None:
    docs = rendered("prod")
    (job,) = jobs_of(docs, "namespace-job")
    job_hook = hook_annotations(job)
    assert set(job_hook["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert set(job_hook["helm.sh/hook-delete-policy"].split(",")) == {
        "before-hook-creation",
        "hook-succeeded",
    }
    # Its ServiceAccount is a hook of the same events with a lower weight: created before it.
    pod = job["spec"]["template"]["spec"]
    account = named(docs, "ServiceAccount", pod["serviceAccountName"])
    account_hook = hook_annotations(account)
    assert account_hook["helm.sh/hook"] == job_hook["helm.sh/hook"]
    assert int(account_hook["helm.sh/hook-weight"]) < int(job_hook["helm.sh/hook-weight"])
    # Everything else is a regular object, created only after the hooks succeeded (the
    # other hooks are the schema migrations', tested in test_database.py).
    hooks = [d for d in docs if hook_annotations(d)]
    assert [d["kind"] for d in hooks if component(d) == "namespace-job"] == [
        "ServiceAccount",
        "Job",
    ]
    assert {component(d) for d in hooks} == {"namespace-job", "db-migrate", "limits"}
    # helm agrees: without hooks, the workers remain and the Job is gone.
    without_hooks = helm.template("prod", args=["--no-hooks"])
    assert not of_kind(without_hooks, "Job")
    assert len(of_kind(without_hooks, "Deployment")) == len(of_kind(docs, "Deployment"))

    # The Job connects exactly as the workers do (no ConfigMap exists yet when it runs).
    (container,) = pod["containers"]
    assert "envFrom" not in container
    job_env = {e["name"]: e["value"] for e in container["env"]}
    worker = _all_configs(docs)[0]
    assert job_env == {k: v for k, v in worker.items() if k.startswith("TEMPORAL_")}
    deployment = of_kind(docs, "Deployment")[0]
    # The same Temporal credentials; not the workers' keyring (it reads and writes no payload).
    worker_volumes = _secret_volumes(deployment["spec"]["template"]["spec"])
    assert "encryption-keys" in [v["name"] for v in worker_volumes]
    assert _secret_volumes(pod) == [v for v in worker_volumes if v["name"] != "encryption-keys"]
    assert container["image"] == worker_container(of_kind(docs, "Deployment")[0])["image"]


def _secret_volumes(pod: Doc) -> list[Doc]:
    return [v for v in pod["volumes"] if "secret" in v]


def test_namespace_job_can_be_disabled(helm: Helm) -> None:
    docs = helm.template("prod", values=[{"namespaceJob": {"enabled": False}}])
    assert not [d for d in docs if hook_annotations(d) and component(d) == "namespace-job"]
    # The schema migrations still run before the workers.
    assert jobs_of(docs, "db-migrate")


# -- the worker pod: probes, shutdown, security, config checksum --------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_worker_pods_probes_grace_and_security(rendered: Render, env: str) -> None:
    docs = rendered(env)
    for deployment in of_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        container = worker_container(deployment)
        assert container["ports"] == [
            {"name": "http-metrics", "containerPort": 9000, "protocol": "TCP"}
        ]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-metrics"}
        config = config_of(docs, deployment)
        assert config["WORKER_HTTP_PORT"] == "9000"
        shutdown = int(config["WORKER_SHUTDOWN_TIMEOUT"].removesuffix("s"))
        assert pod["terminationGracePeriodSeconds"] > shutdown
        # Restricted Pod Security Standard.
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        account = named(docs, "ServiceAccount", pod["serviceAccountName"])
        assert not hook_annotations(account)


def test_config_change_rolls_only_that_queues_pods(helm: Helm, registry: list[Any]) -> None:
    def checksums(values: dict[str, Any]) -> dict[str, str]:
        docs = helm.template("prod", values=[values])
        return {
            queue: d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for queue, d in by_queue(docs, "Deployment").items()
        }

    first = registry[0].name
    before = checksums({})
    assert before == checksums({})
    after = checksums({"queues": {first: {"worker": {"logLevel": "debug"}}}})
    assert {q for q in before if before[q] != after[q]} == {first}
    everyone = checksums(
        {
            "temporal": {"address": "temporal.example:7233"},
            "networkPolicy": {"temporal": {"cidrs": ["10.20.0.0/16"]}},
        }
    )
    assert all(before[q] != everyone[q] for q in before)


# -- metrics: Service, ServiceMonitor, rules, dashboards; NetworkPolicy -------------------------


def test_metrics_services_and_service_monitor(rendered: Render) -> None:
    docs = rendered("prod")
    (monitor,) = of_kind(docs, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = of_kind(docs, "Service")
    assert len(services) == len(of_kind(docs, "Deployment"))
    for service in services:
        assert selector.items() <= service["metadata"]["labels"].items()
        assert service["spec"]["ports"] == [
            {"name": "http-metrics", "port": 9000, "targetPort": "http-metrics", "protocol": "TCP"}
        ]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http-metrics", "/metrics")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["fleet-prod"]}
    # The SDK's namespace label (the Temporal namespace) wins over the target's.
    assert endpoint["honorLabels"] is True
    # The queue and the Kubernetes namespace reach every series; a versioned worker's build id
    # too (from the chart's pod label, or temporal-worker-controller's), when there is one.
    relabeled: dict[str, list[list[str]]] = {}
    for r in endpoint["relabelings"]:
        relabeled.setdefault(r["targetLabel"], []).append(r["sourceLabels"])
    queue_label = re.sub(r"[^A-Za-z0-9_]", "_", "temporal-fleet/queue")
    build_labels = [
        re.sub(r"[^A-Za-z0-9_]", "_", k)
        for k in ("temporal.io/build-id", "temporal-fleet/build-id")
    ]
    assert relabeled == {
        "queue": [[f"__meta_kubernetes_service_label_{queue_label}"]],
        "kubernetes_namespace": [["__meta_kubernetes_namespace"]],
        "build_id": [[f"__meta_kubernetes_pod_label_{label}"] for label in build_labels],
    }
    # An unversioned pod has no build label: the rule must not write an empty build_id.
    assert {r.get("regex") for r in endpoint["relabelings"] if r["targetLabel"] == "build_id"} == {
        "(.+)"
    }
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_scraped_job_is_the_one_the_alert_rules_select(rendered: Render) -> None:
    """deploy/prometheus's rules select up{job="..."}: the ServiceMonitor must produce that job."""
    docs = rendered("prod")
    (monitor,) = of_kind(docs, "ServiceMonitor")
    job_label = monitor["spec"]["jobLabel"]
    jobs = {s["metadata"]["labels"][job_label] for s in of_kind(docs, "Service")}
    assert jobs == {"temporal-workers"}
    rules = "\n".join(p.read_text() for p in (CHART / "files" / "prometheus" / "rules").glob("*"))
    selected = set(re.findall(r'job="([^"]+)"', rules))
    assert selected <= jobs, f"alert rules select jobs {selected}, the chart scrapes {jobs}"


def test_rules_and_dashboards_come_from_the_deploy_files(helm: Helm, fixture_chart: Path) -> None:
    enable = {"prometheusRule": {"enabled": True}, "grafanaDashboards": {"enabled": True}}
    docs = helm.template(values=[enable], chart=fixture_chart)
    (rule,) = of_kind(docs, "PrometheusRule")
    expected = []
    for path in sorted((FIXTURE_DEPLOY / "prometheus" / "rules").iterdir()):
        doc = yaml.safe_load(path.read_text())
        expected += doc.get("groups") or doc["spec"]["groups"]
    assert sorted(rule["spec"]["groups"], key=lambda g: g["name"]) == sorted(
        expected, key=lambda g: g["name"]
    )
    # Prometheus templates in annotations are Prometheus', not Helm's.
    assert "{{ $labels.pod }}" in yaml.safe_dump(rule)

    (dashboard,) = [
        d for d in of_kind(docs, "ConfigMap") if "grafana_dashboard" in d["metadata"]["labels"]
    ]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Temporal fleet"}
    source = FIXTURE_DEPLOY / "grafana" / "dashboards" / "fleet-overview.json"
    assert dashboard["data"] == {"fleet-overview.json": source.read_text().rstrip("\n")}
    for doc in (rule, dashboard):
        assert not validation_errors(doc, KUBE_VERSIONS[-1])


def test_chart_rules_and_dashboards_are_its_copied_files(rendered: Render) -> None:
    """The PrometheusRule and dashboards hold exactly files/ (the rules' and dashboards' only
    copy); with no files, enabling them renders nothing."""
    docs = rendered("prod")
    rule_files = sorted((CHART / "files" / "prometheus" / "rules").glob("*.y*ml"))
    groups = []
    for path in rule_files:
        doc = yaml.safe_load(path.read_text())
        groups += doc.get("groups") or doc["spec"]["groups"]
    rules = of_kind(docs, "PrometheusRule")
    assert [r["spec"]["groups"] for r in rules] == ([groups] if groups else [])

    dashboard_files = sorted((CHART / "files" / "grafana" / "dashboards").glob("*.json"))
    dashboards = [
        d for d in of_kind(docs, "ConfigMap") if "grafana_dashboard" in d["metadata"]["labels"]
    ]
    rendered_data = {k: v for d in dashboards for k, v in d["data"].items()}
    assert rendered_data == {p.name: p.read_text().rstrip("\n") for p in dashboard_files}
    for data in rendered_data.values():
        json.loads(data)


def test_network_policy_allows_metrics_in_and_temporal_out(rendered: Render) -> None:
    docs = rendered("prod")
    spec = release_policy(docs)["spec"]
    selector = spec["podSelector"]["matchLabels"]
    pods = of_kind(docs, "Deployment") + of_kind(docs, "Job")
    for pod_labels in [d["spec"]["template"]["metadata"]["labels"] for d in pods]:
        assert selector.items() <= pod_labels.items()
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = spec["ingress"]
    assert ingress["ports"] == [{"port": "http-metrics", "protocol": "TCP"}]
    egress_ports = {(p["port"], p["protocol"]) for rule in spec["egress"] for p in rule["ports"]}
    # Temporal, DNS, and prod's database (database.egress).
    assert egress_ports == {(7233, "TCP"), (53, "UDP"), (53, "TCP"), (5432, "TCP")}


def test_credentials_come_from_existing_secrets(rendered: Render) -> None:
    docs = rendered("prod")
    assert not of_kind(docs, "Secret")
    deployment = of_kind(docs, "Deployment")[0]
    pod = deployment["spec"]["template"]["spec"]
    config = config_of(docs, deployment)
    mounts = {m["name"]: m["mountPath"] for m in worker_container(deployment)["volumeMounts"]}
    volumes = {v["name"]: v["secret"] for v in _secret_volumes(pod)}
    assert config["TEMPORAL_TLS"] == "true"
    assert config["TEMPORAL_TLS_CLIENT_CERT_PATH"] == f"{mounts['temporal-tls-client']}/tls.crt"
    assert config["TEMPORAL_TLS_CLIENT_KEY_PATH"] == f"{mounts['temporal-tls-client']}/tls.key"
    assert config["TEMPORAL_TLS_SERVER_CA_CERT_PATH"] == f"{mounts['temporal-tls-ca']}/ca.crt"
    assert volumes["temporal-tls-client"]["secretName"] == "temporal-client-tls"
    (auth,) = of_kind(docs, "TriggerAuthentication")
    refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    assert refs == {
        "cert": ("temporal-client-tls", "tls.crt"),
        "key": ("temporal-client-tls", "tls.key"),
        "ca": ("temporal-client-tls", "ca.crt"),
    }


# -- wrong values fail with a clear message -----------------------------------------------------

BAD_VALUES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "negative replicas": ({"queues": {"orders": {"replicas": -1}}}, ["orders", "replicas"]),
    "missing image": ({"image": {"registry": ""}}, ["has no image", "image.registry"]),
    "unknown autoscaler kind": (
        {"queues": {"orders": {"autoscaling": {"kind": "vpa"}}}},
        ["autoscaling", "kind", "keda"],
    ),
    "queue missing from the registry": ({"queues": {"billing": {"replicas": 1}}}, ["billing"]),
    "registered queue removed": ({"queues": {"orders": None}}, ["orders"]),
    "task queue differs from the registry": (
        {"queues": {"orders": {"taskQueue": "orders-v9"}}},
        ["taskQueue", "orders-v1"],
    ),
    "numeric image tag": ({"defaults": {"image": {"tag": 1.1}}}, ["tag", "string"]),
    "retention without unit": ({"temporal": {"retention": "7"}}, ["retention"]),
    "address without port": ({"temporal": {"address": "temporal"}}, ["address"]),
    "hpa minimum above maximum": (
        {
            "queues": {
                "orders": {"autoscaling": {"kind": "hpa", "minReplicas": 9, "maxReplicas": 3}}
            }
        },
        ["queue orders: autoscaling.minReplicas (9) is above autoscaling.maxReplicas (3)"],
    ),
    "hpa scaling to zero": (
        {"queues": {"orders": {"autoscaling": {"kind": "hpa", "minReplicas": 0}}}},
        ["minReplicas >= 1", "keda"],
    ),
    "hpa on cpu without a cpu request": (
        # null deletes the key from the defaults (Helm's rule for keys values.yaml has).
        {
            "defaults": {"resources": {"requests": {"cpu": None}}},
            "queues": {"orders": {"autoscaling": {"kind": "hpa"}}},
        },
        ["queue orders: an HPA on CPU needs resources.requests.cpu"],
    ),
    "grace period not above the shutdown timeout": (
        {"defaults": {"terminationGracePeriodExtraSeconds": 0}},
        ["terminationGracePeriodExtraSeconds"],
    ),
    "unknown setting": ({"defaults": {"worker": {"maxPoller": 3}}}, ["maxPoller"]),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_bad_values_are_rejected(helm: Helm, case: str) -> None:
    """Each case on top of values-dev.yaml (which leaves the orders queue to the defaults)."""
    values, fragments = BAD_VALUES[case]
    proc = helm.template_proc("dev", values=[values])
    assert proc.returncode != 0, f"{case}: rendered anyway"
    message = proc.stderr
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in:\n{message}"


def test_lint_and_install_reject_bad_values_too(helm: Helm) -> None:
    bad = ["-f", str(CHART / "values-prod.yaml"), "--set", "queues.orders.autoscaling.kind=vpa"]
    lint = helm.run("lint", str(CHART), *bad)
    assert lint.returncode != 0
    assert "keda" in lint.stdout + lint.stderr
    install = helm.run(
        "install", "fleet-prod", str(CHART), "--namespace", "fleet-prod", *bad, "--dry-run=client"
    )
    assert install.returncode != 0
    # helm 4 checks the values offline; helm 3 asks the cluster first (none here), then would.
    if "cluster unreachable" not in install.stderr:
        assert "keda" in install.stderr


def test_template_failure_is_reported(helm: Helm) -> None:
    with pytest.raises(HelmFailed, match="billing"):
        helm.template(values=[{"queues": {"billing": {}}}])
