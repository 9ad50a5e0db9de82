"""Worker Deployment Versioning in the chart: builds side by side, the promotion hook, and the
temporal-worker-controller mode, rendered by the real helm for every environment.

A queue with a `builds` list renders one Deployment (and autoscaler and PodDisruptionBudget) per
build, and a post-install/post-upgrade Job promoting the rollout target. With
`workerController.enabled`, a WorkerDeployment, WorkerResourceTemplates and a Connection replace
them; they are validated against the controller's CRD schemas (tests/helm/crds/temporal.io), and
the Deployments and autoscalers the controller derives from them against Kubernetes' own.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from helm.rendering import (
    CHART,
    CONTROLLER_BUILD_LABEL,
    DATABASE,
    ENVIRONMENTS,
    KUBE_VERSIONS,
    RENDER_KUBE_VERSION,
    Doc,
    Helm,
    component,
    config_of,
    controller_copy,
    controller_deployment,
    hook_annotations,
    jobs_of,
    named,
    of_kind,
    queue_of,
    release_policy,
    validation_errors,
    worker_container,
)

# slow: helm renders the chart.
pytestmark = pytest.mark.slow

BUILD_LABEL = "temporal-fleet/build-id"
OLD, NEW = "2024.06.01-a1b2c3", "d4e5f6"
DIGEST = "sha256:" + "0123456789abcdef" * 4
OLD_DIGEST = "sha256:" + "fedcba9876543210" * 4
# Two live builds of every queue (every queue image is tagged per commit): OLD, then NEW. Two
# pods of each queue, so the queues that keep state share the database (dev has none of its own).
TWO_BUILDS: dict[str, Any] = {
    **DATABASE,
    "defaults": {
        "builds": [
            {"buildId": OLD, "image": {"tag": "a1b2c3", "digest": OLD_DIGEST}},
            {"buildId": NEW, "image": {"tag": "d4e5f6", "digest": DIGEST}},
        ]
    },
}
CONTROLLER = {"workerController": {"enabled": True}}

Versioned = Callable[..., list[Doc]]


@pytest.fixture(scope="session")
def versioned(helm: Helm) -> Versioned:
    """The objects of one environment with TWO_BUILDS (and more values), cached."""
    cached: dict[tuple[str, str], list[Doc]] = {}

    def render(env: str, *more: dict[str, Any]) -> list[Doc]:
        key = (env, repr(more))
        if key not in cached:
            cached[key] = helm.template(env, values=[TWO_BUILDS, *more])
        return cached[key]

    return render


def _deployments(docs: list[Doc]) -> dict[str, list[Doc]]:
    out: dict[str, list[Doc]] = {}
    for d in of_kind(docs, "Deployment"):
        out.setdefault(queue_of(d), []).append(d)
    return out


def _temporal_trigger(triggers: list[Doc]) -> Doc:
    """The Temporal scaler's trigger (a long-activities or batch queue may have a second one,
    on its slots in use), always the first."""
    assert triggers[0]["type"] == "temporal"
    (trigger,) = [t for t in triggers if t["type"] == "temporal"]
    return trigger


def _env(container: Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


def _promote_jobs(docs: list[Doc]) -> dict[str, Doc]:
    jobs = [
        d
        for d in of_kind(docs, "Job")
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == "promote"
    ]
    return {queue_of(j): j for j in jobs}


def _autoscalers_of(docs: list[Doc], deployment: Doc) -> list[Doc]:
    name = deployment["metadata"]["name"]
    return [
        d
        for d in docs
        if d["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")
        and d["spec"]["scaleTargetRef"]["name"] == name
    ]


def _errors(docs: list[Doc]) -> list[str]:
    keys = [(d["kind"], d["metadata"]["name"]) for d in docs]
    errors = [] if len(keys) == len(set(keys)) else ["two objects share a kind and name"]
    for kube_version in KUBE_VERSIONS:
        errors += [
            f"{kube_version} {doc['kind']}/{doc['metadata']['name']}: {error}"
            for doc in docs
            for error in validation_errors(doc, kube_version)
        ]
    return errors


def _lint(helm: Helm, env: str, *values: str) -> None:
    args = ["lint", "--strict", str(CHART), "-f", str(CHART / f"values-{env}.yaml")]
    for path in values:
        args += ["-f", path]
    proc = helm.run(*args, "--namespace", f"fleet-{env}", "--kube-version", RENDER_KUBE_VERSION)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout


# -- two builds side by side, in every environment ----------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_two_builds_per_queue_render_and_validate(
    helm: Helm,
    rendered: Callable[[str], list[Doc]],
    versioned: Versioned,
    registry: list[Any],
    env: str,
    tmp_path: Path,
) -> None:
    docs = versioned(env)
    assert not _errors(docs), "\n".join(_errors(docs))
    unversioned = {queue_of(d): d for d in of_kind(rendered(env), "Deployment")}
    deployments = _deployments(docs)
    assert sorted(deployments) == [q.name for q in registry]
    for q in registry:
        pair = deployments[q.name]
        # Two Deployments, each its own build: name, labels, selector, pod labels and env agree.
        assert len(pair) == 2
        ids = [d["metadata"]["labels"][BUILD_LABEL] for d in pair]
        assert ids == [OLD, NEW]
        for d, build_id in zip(pair, ids, strict=True):
            assert d["metadata"]["name"].endswith("-" + build_id.replace(".", "-"))
            assert d["spec"]["selector"]["matchLabels"][BUILD_LABEL] == build_id
            assert d["spec"]["template"]["metadata"]["labels"][BUILD_LABEL] == build_id
            env_vars = _env(worker_container(d))
            assert env_vars["TEMPORAL_WORKER_BUILD_ID"] == build_id
            config = config_of(docs, d)
            assert config["WORKER_VERSIONING"] == "on"
            assert config["TEMPORAL_DEPLOYMENT_NAME"] == q.name
            assert config["WORKER_VERSIONING_BOOTSTRAP"] == "true"
        old, new = pair
        assert worker_container(old)["image"].endswith(
            f"temporal-fleet-{q.name}:a1b2c3@{OLD_DIGEST}"
        )
        assert worker_container(new)["image"].endswith(f"temporal-fleet-{q.name}:d4e5f6@{DIGEST}")
        # One ConfigMap per queue, shared: a build changes no other build's environment.
        assert config_of(docs, old) == config_of(docs, new)
        # Each build scales as the queue does without builds, on its own autoscaler.
        kind = unversioned[q.name]["metadata"]["annotations"]["temporal-fleet/autoscaling"]
        for d in pair:
            assert d["metadata"]["annotations"]["temporal-fleet/autoscaling"] == kind
            scalers = _autoscalers_of(docs, d)
            if kind == "none":
                assert (
                    not scalers and d["spec"]["replicas"] == unversioned[q.name]["spec"]["replicas"]
                )
            else:
                (scaler,) = scalers
                assert (
                    scaler["kind"]
                    == {"hpa": "HorizontalPodAutoscaler", "keda": "ScaledObject"}[kind]
                )
                assert (
                    scaler["metadata"]["labels"][BUILD_LABEL]
                    == d["metadata"]["labels"][BUILD_LABEL]
                )
                assert "replicas" not in d["spec"]
        # Its own PodDisruptionBudget, when the environment has them.
        budgets = [p for p in of_kind(docs, "PodDisruptionBudget") if queue_of(p) == q.name]
        if budgets:
            assert sorted(
                p["spec"]["selector"]["matchLabels"][BUILD_LABEL] for p in budgets
            ) == sorted(ids)
            for p in budgets:
                (d,) = [
                    d
                    for d in pair
                    if d["metadata"]["labels"][BUILD_LABEL] == p["metadata"]["labels"][BUILD_LABEL]
                ]
                assert p["spec"]["selector"] == d["spec"]["selector"]
        # One Service per queue, selecting the pods of both builds.
        (service,) = [s for s in of_kind(docs, "Service") if queue_of(s) == q.name]
        for d in pair:
            assert (
                service["spec"]["selector"].items()
                <= d["spec"]["template"]["metadata"]["labels"].items()
            )
    # KEDA's build ScaledObjects count their own version's backlog only.
    for so in of_kind(docs, "ScaledObject"):
        trigger = _temporal_trigger(so["spec"]["triggers"])
        assert trigger["metadata"]["workerDeploymentName"] == queue_of(so)
        assert (
            trigger["metadata"]["workerDeploymentBuildId"] == so["metadata"]["labels"][BUILD_LABEL]
        )
    _lint(helm, env, _values_file(tmp_path, "two-builds", TWO_BUILDS))


def _values_file(directory: Path, name: str, values: dict[str, Any]) -> str:
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_one_promotion_hook_per_queue_for_the_newest_build(
    versioned: Versioned, registry: list[Any], env: str
) -> None:
    docs = versioned(env)
    jobs = _promote_jobs(docs)
    assert sorted(jobs) == [q.name for q in registry]
    for q in registry:
        job = jobs[q.name]
        (_, new) = _deployments(docs)[q.name]
        hook = hook_annotations(job)
        assert set(hook["helm.sh/hook"].split(",")) == {"post-install", "post-upgrade"}
        assert set(hook["helm.sh/hook-delete-policy"].split(",")) == {
            "before-hook-creation",
            "hook-succeeded",
        }
        assert 0 <= job["spec"]["backoffLimit"] <= 2
        assert job["spec"]["activeDeadlineSeconds"] > 300  # above --wait-pollers
        pod = job["spec"]["template"]["spec"]
        worker_pod = new["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        worker = worker_container(new)
        # The newest build's image and id, the promotion command.
        assert container["image"] == worker["image"]
        assert container["command"] == [
            "fleet",
            "deploy",
            "rollout",
            q.name,
            "--wait-pollers",
            "300s",
        ]
        assert _env(container) == _env(worker)
        assert _env(container)["TEMPORAL_WORKER_BUILD_ID"] == NEW
        # Exactly the workers' connection: ConfigMap, Secrets, account, security.
        assert container["envFrom"] == worker["envFrom"]
        assert [v for v in pod["volumes"] if "secret" in v] == [
            v for v in worker_pod["volumes"] if "secret" in v
        ]
        assert [m for m in container["volumeMounts"] if m["name"] != "tmp"] == [
            m for m in worker["volumeMounts"] if m["name"] != "tmp"
        ]
        assert pod["serviceAccountName"] == worker_pod["serviceAccountName"]
        assert pod["securityContext"] == worker_pod["securityContext"]
        assert container["securityContext"] == worker["securityContext"]
        assert pod["restartPolicy"] == "Never"
        # Not a worker: no Service, budget or autoscaler selects it.
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == "promote"
        policy = release_policy(docs)
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    # The namespace Job and the schema migrations still run before everything; after the
    # workers, the task queue limits (a lower weight), then the promotions.
    limits = jobs_of(docs, "limits")
    before = [j for j in of_kind(docs, "Job") if j not in jobs.values() and j not in limits]
    assert jobs_of(docs, "namespace-job") and jobs_of(docs, "db-migrate")
    assert sorted(j["metadata"]["name"] for j in before) == sorted(
        j["metadata"]["name"] for j in jobs_of(docs, "namespace-job") + jobs_of(docs, "db-migrate")
    )
    for job in before:
        assert "pre-install" in hook_annotations(job)["helm.sh/hook"]
    promote_weight = {int(hook_annotations(j)["helm.sh/hook-weight"]) for j in jobs.values()}
    for job in limits:
        assert hook_annotations(job)["helm.sh/hook"] == "post-install,post-upgrade"
        assert int(hook_annotations(job)["helm.sh/hook-weight"]) < min(promote_weight)


def test_adding_a_build_leaves_the_running_one_untouched(helm: Helm) -> None:
    """helm upgrade from [OLD] to [OLD, NEW]: OLD's Deployment, pods and ConfigMap are the same
    objects; NEW is added; the hook moves to NEW; OLD keeps at least one replica."""
    one = {"defaults": {"builds": TWO_BUILDS["defaults"]["builds"][:1]}}
    before = helm.template("prod", values=[one])
    after = helm.template("prod", values=[TWO_BUILDS])
    for queue, (old,) in _deployments(before).items():
        old_after, new = _deployments(after)[queue]
        assert old_after["metadata"]["name"] == old["metadata"]["name"]
        assert old_after["spec"] == old["spec"], f"{queue}: the running build's Deployment changed"
        assert new["metadata"]["labels"][BUILD_LABEL] == NEW
        assert _promote_jobs(before)[queue]["metadata"]["labels"][BUILD_LABEL] == OLD
        assert _promote_jobs(after)[queue]["metadata"]["labels"][BUILD_LABEL] == NEW
    for name in {d["metadata"]["name"] for d in of_kind(before, "ConfigMap")}:
        assert named(before, "ConfigMap", name)["data"] == named(after, "ConfigMap", name)["data"]
    # ingest scales to zero when idle; once it is not the target, its old build keeps a worker.
    ingest = {
        queue_of(s) + s["metadata"]["labels"][BUILD_LABEL]: s
        for s in of_kind(after, "ScaledObject")
    }
    assert ingest["ingest" + OLD]["spec"]["minReplicaCount"] == 1
    assert ingest["ingest" + NEW]["spec"]["minReplicaCount"] == 0
    # ... and the new one scales to zero only after the hook has had its chance to see pollers.
    assert ingest["ingest" + NEW]["spec"]["initialCooldownPeriod"] >= 600
    (old_ingest,) = [s for s in of_kind(before, "ScaledObject") if queue_of(s) == "ingest"]
    assert old_ingest["spec"]["minReplicaCount"] == 0


def test_ramp_rollback_and_build_overrides(helm: Helm) -> None:
    values = {
        "queues": {
            "orders": {"rollout": {"mode": "promote", "rampPercentage": 25}},
            # Roll back: the previous build is the target again.
            "agent": {"rollout": {"target": OLD}},
            "notifications": {
                "builds": [
                    {"buildId": OLD, "replicas": 1, "autoscaling": {"kind": "none"}},
                    # Its own image: pinned by its own digest, never the queue's.
                    {
                        "buildId": NEW,
                        "image": {"repository": "registry.example/notify", "digest": DIGEST},
                    },
                ]
            },
        }
    }
    docs = helm.template("prod", values=[TWO_BUILDS, values])
    assert not _errors(docs), "\n".join(_errors(docs))
    jobs = _promote_jobs(docs)
    command = jobs["orders"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[-2:] == ["--ramp", "25"]
    assert "--ramp" not in jobs["ingest"]["spec"]["template"]["spec"]["containers"][0]["command"]
    agent = jobs["agent"]["spec"]["template"]["spec"]["containers"][0]
    assert _env(agent)["TEMPORAL_WORKER_BUILD_ID"] == OLD
    assert agent["image"].endswith(f":a1b2c3@{OLD_DIGEST}")
    old, new = _deployments(docs)["notifications"]
    assert old["spec"]["replicas"] == 1 and not _autoscalers_of(docs, old)
    assert worker_container(new)["image"] == f"registry.example/notify:0.1.0@{DIGEST}"
    assert [s["kind"] for s in _autoscalers_of(docs, new)] == ["HorizontalPodAutoscaler"]


def test_keda_without_version_backlog(helm: Helm) -> None:
    """KEDA before 2.20: the target scales on the task queue, the others on nothing."""
    values = {"defaults": {"autoscaling": {"keda": {"versionBacklog": False}}}}
    docs = helm.template("prod", values=[TWO_BUILDS, values])
    assert not _errors(docs)
    for queue in ("orders", "ingest"):
        old, new = _deployments(docs)[queue]
        assert not _autoscalers_of(docs, old)
        assert old["spec"]["replicas"] == (2 if queue == "orders" else 1)
        (so,) = _autoscalers_of(docs, new)
        metadata = so["spec"]["triggers"][0]["metadata"]
        assert "workerDeploymentBuildId" not in metadata and metadata["taskQueue"] == f"{queue}-v1"


def test_progressive_rollout_overrides(helm: Helm) -> None:
    """rollout.progressive overrides the queue's policy; mode promote runs the old command."""
    progressive = {
        "steps": "5,25,100",
        "pause": "10m",
        "maxFailureRatio": 0.02,
        "minExecutions": 50,
        "insufficientData": "rollback",
        "prometheusUrl": "http://prometheus.monitoring:9090",
        "wait": True,
    }
    values = {
        "queues": {
            "orders": {"rollout": {"progressive": progressive}},
            "ingest": {"rollout": {"mode": "promote"}},
        }
    }
    docs = helm.template("prod", values=[TWO_BUILDS, values])
    assert not _errors(docs), "\n".join(_errors(docs))
    jobs = _promote_jobs(docs)
    orders = jobs["orders"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert orders == [
        "fleet", "deploy", "rollout", "orders", "--wait-pollers", "300s",
        "--steps", "5,25,100", "--pause", "10m", "--max-failure-ratio", "0.02",
        "--min-executions", "50", "--insufficient-data", "rollback",
        "--prometheus-url", "http://prometheus.monitoring:9090", "--wait",
    ]  # fmt: skip
    ingest = jobs["ingest"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert ingest[:4] == ["fleet", "deploy", "promote", "ingest"]
    # A ramp percentage is promote's: with progressive it is refused, naming both.
    proc = helm.template_proc(
        "prod", values=[TWO_BUILDS, {"queues": {"orders": {"rollout": {"rampPercentage": 20}}}}]
    )
    assert proc.returncode != 0
    assert "rollout.rampPercentage is for rollout.mode promote" in proc.stderr
    bad = helm.template_proc(
        "prod",
        values=[TWO_BUILDS, {"queues": {"orders": {"rollout": {"progressive": {"steps": "x"}}}}}],
    )
    assert bad.returncode != 0 and "steps" in bad.stderr


def test_promotion_can_be_disabled(helm: Helm) -> None:
    one = helm.template(
        "prod", values=[TWO_BUILDS, {"queues": {"orders": {"rollout": {"promote": False}}}}]
    )
    assert "orders" not in _promote_jobs(one) and "agent" in _promote_jobs(one)
    none = helm.template("prod", values=[TWO_BUILDS, {"defaults": {"rollout": {"promote": False}}}])
    assert not _promote_jobs(none)
    assert all(len(pair) == 2 for pair in _deployments(none).values())


def test_unversioned_queues_render_as_before(rendered: Callable[[str], list[Doc]]) -> None:
    for env in ENVIRONMENTS:
        docs = rendered(env)
        assert not _promote_jobs(docs)
        assert not [d for d in docs if d["apiVersion"].startswith("temporal.io/")]
        for d in of_kind(docs, "Deployment"):
            assert BUILD_LABEL not in d["metadata"]["labels"]
            assert d["metadata"]["name"] == f"fleet-{env}-temporal-fleet-{queue_of(d)}"
            assert "TEMPORAL_WORKER_BUILD_ID" not in _env(worker_container(d))
            config = config_of(docs, d)
            assert config["WORKER_VERSIONING"] == "off"
            assert "TEMPORAL_DEPLOYMENT_NAME" not in config
        for so in of_kind(docs, "ScaledObject"):
            assert "workerDeploymentName" not in so["spec"]["triggers"][0]["metadata"]


def test_long_build_ids_make_valid_names(helm: Helm) -> None:
    long_id = "release-2024.06.01_" + "x" * 44
    values = {
        "queues": {"notifications": {"builds": [{"buildId": "A.1"}, {"buildId": long_id}]}},
    }
    short = helm.template("prod", values=[values])
    assert not _errors(short), "\n".join(_errors(short))
    names = [d["metadata"]["name"] for d in _deployments(short)["notifications"]]
    assert names[0] == "fleet-prod-temporal-fleet-notifications-a-1"
    # Too long for a DNS label: a prefix of both, and a hash of the build id keeps them apart.
    docs = helm.template("prod", values=[values], release="a-rather-long-release-name-for-fleet")
    assert not _errors(docs), "\n".join(_errors(docs))
    names = [d["metadata"]["name"] for d in _deployments(docs)["notifications"]]
    assert len(set(names)) == 2 and all(len(n) <= 63 for n in names)
    assert names[1].startswith("a-rather-long-release-name-")
    assert "-notifications-release-2024-" in names[1]


# -- temporal-worker-controller -----------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_worker_controller_mode(
    helm: Helm, versioned: Versioned, registry: list[Any], env: str, tmp_path: Path
) -> None:
    docs = versioned(env, CONTROLLER)
    assert not _errors(docs), "\n".join(_errors(docs))
    plain = versioned(env)
    # No worker Deployment, no autoscaler of the chart's own, no promotion hook.
    assert not of_kind(docs, "Deployment")
    assert not of_kind(docs, "HorizontalPodAutoscaler") and not of_kind(docs, "ScaledObject")
    assert not _promote_jobs(docs)
    # Only the pre-install/pre-upgrade hooks (the namespace Job and the schema migrations) and
    # the task queue limits, which do not route anything.
    hooks = {component(j): hook_annotations(j)["helm.sh/hook"] for j in of_kind(docs, "Job")}
    assert hooks == {
        "namespace-job": "pre-install,pre-upgrade",
        "db-migrate": "pre-install,pre-upgrade",
        "limits": "post-install,post-upgrade",
    }
    (connection,) = of_kind(docs, "Connection")
    assert connection["spec"]["hostPort"] == "temporal-frontend.temporal.svc.cluster.local:7233"
    workers = {queue_of(w): w for w in of_kind(docs, "WorkerDeployment")}
    assert sorted(workers) == [q.name for q in registry]
    templates = {queue_of(t): t for t in of_kind(docs, "WorkerResourceTemplate")}
    for q in registry:
        wd = workers[q.name]
        spec = wd["spec"]
        _, newest = _deployments(plain)[q.name]
        # The newest build's pod template, under the chart's build id.
        assert spec["workerOptions"] == {
            "connectionRef": {"name": connection["metadata"]["name"]},
            "temporalNamespace": f"fleet-{env}",
            "unsafeCustomBuildID": NEW,
        }
        (container,) = spec["template"]["spec"]["containers"]
        assert container["image"] == worker_container(newest)["image"]
        assert container["command"] == ["fleet", "worker", q.name]
        assert spec["rollout"] == {"strategy": "AllAtOnce"}
        assert spec["sunset"] == {"scaledownDelay": "1h", "deleteDelay": "24h"}
        # The controller injects the connection and the version: the template sets neither.
        assert not {"TEMPORAL_WORKER_BUILD_ID", "TEMPORAL_API_KEY"} & set(_env(container))
        config = named(docs, "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])["data"]
        assert config["WORKER_VERSIONING"] == "on"
        assert config["WORKER_VERSIONING_BOOTSTRAP"] == "false"
        assert not {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_DEPLOYMENT_NAME"} & set(
            config
        )
        # What the controller makes of it: a valid Deployment the queue's Service selects.
        made = controller_deployment(wd, NEW)
        assert not validation_errors(made, KUBE_VERSIONS[0])
        (service,) = [s for s in of_kind(docs, "Service") if queue_of(s) == q.name]
        assert (
            service["spec"]["selector"].items()
            <= made["spec"]["template"]["metadata"]["labels"].items()
        )
        # Replicas, or an autoscaler per version, as the queue scales without the controller.
        kind = newest["metadata"]["annotations"]["temporal-fleet/autoscaling"]
        if kind == "none":
            assert spec["replicas"] == newest["spec"]["replicas"] and q.name not in templates
            continue
        assert "replicas" not in spec
        wrt = templates[q.name]
        assert wrt["spec"]["workerDeploymentRef"] == {"name": wd["metadata"]["name"]}
        copy_ = controller_copy(wrt, wd, NEW)
        assert copy_["spec"]["scaleTargetRef"]["name"] == made["metadata"]["name"]
        assert not validation_errors(copy_, KUBE_VERSIONS[-1])
        (chart_scaler,) = _autoscalers_of(plain, newest)
        assert copy_["kind"] == chart_scaler["kind"]
        if kind == "keda":
            trigger = _temporal_trigger(copy_["spec"]["triggers"])
            chart_trigger = _temporal_trigger(chart_scaler["spec"]["triggers"])
            # Per version: the controller's Worker Deployment name and the version's build id.
            assert trigger["metadata"] == {
                **chart_trigger["metadata"],
                "workerDeploymentName": f"fleet-{env}/{wd['metadata']['name']}",
                "workerDeploymentBuildId": NEW,
            }
    _lint(
        helm,
        env,
        _values_file(tmp_path, "two-builds", TWO_BUILDS),
        _values_file(tmp_path, "controller", CONTROLLER),
    )


def test_worker_controller_mode_without_builds(helm: Helm) -> None:
    docs = helm.template("prod", values=[CONTROLLER])
    assert not _errors(docs)
    for wd in of_kind(docs, "WorkerDeployment"):
        # The controller derives the build id from the pod template.
        assert "unsafeCustomBuildID" not in wd["spec"]["workerOptions"]
        assert BUILD_LABEL not in wd["spec"]["template"]["metadata"]["labels"]
    # The mTLS Secret goes to the Connection (the controller mounts it); the CA is the chart's,
    # and so is prod's payload keyring (encryption.existingSecret).
    (connection,) = of_kind(docs, "Connection")
    assert connection["spec"]["mutualTLSSecretRef"] == {"name": "temporal-client-tls"}
    pod = of_kind(docs, "WorkerDeployment")[0]["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"] if "secret" in v] == [
        "encryption-keys",
        "temporal-tls-ca",
    ]
    config = named(docs, "ConfigMap", pod["containers"][0]["envFrom"][0]["configMapRef"]["name"])
    assert config["data"]["TEMPORAL_TLS_SERVER_CA_CERT_PATH"] == "/etc/temporal/ca/ca.crt"
    assert all(
        "/etc/temporal/tls" not in m["mountPath"] for m in pod["containers"][0]["volumeMounts"]
    )


def test_worker_controller_rollout_and_api_key(helm: Helm) -> None:
    values = {
        "temporal": {
            "address": "fleet.example.tmprl.cloud:7233",
            "namespace": "fleet.example",
            "tls": {
                "clientCertSecret": "",
                "caSecret": "",
                "serverName": "fleet.example.tmprl.cloud",
            },
            "apiKey": {"existingSecret": "temporal-cloud", "key": "api-key"},
        },
        "networkPolicy": {"temporal": {"anyAddress": True}},
        "queues": {
            "orders": {
                "rollout": {
                    "controller": {
                        "strategy": "Progressive",
                        "steps": [
                            {"rampPercentage": 10, "pauseDuration": "5m"},
                            {"rampPercentage": 50, "pauseDuration": "1h"},
                        ],
                        "gateWorkflowType": "OrdersSmokeTest",
                    }
                }
            },
            "agent": {"rollout": {"promote": False}},
        },
        "workerController": {"enabled": True, "chartBuildIds": False},
    }
    docs = helm.template("prod", values=[TWO_BUILDS, values])
    assert not _errors(docs), "\n".join(_errors(docs))
    (connection,) = of_kind(docs, "Connection")
    assert connection["spec"] == {
        "hostPort": "fleet.example.tmprl.cloud:7233",
        "tls": {"serverName": "fleet.example.tmprl.cloud"},
        "apiKeySecretRef": {"name": "temporal-cloud", "key": "api-key"},
    }
    workers = {queue_of(w): w for w in of_kind(docs, "WorkerDeployment")}
    assert workers["orders"]["spec"]["rollout"] == {
        "strategy": "Progressive",
        "steps": [
            {"rampPercentage": 10, "pauseDuration": "5m"},
            {"rampPercentage": 50, "pauseDuration": "1h"},
        ],
        "gate": {"workflowType": "OrdersSmokeTest"},
    }
    assert workers["agent"]["spec"]["rollout"] == {"strategy": "Manual"}
    for wd in workers.values():
        assert "unsafeCustomBuildID" not in wd["spec"]["workerOptions"]
        assert BUILD_LABEL not in wd["spec"]["template"]["metadata"]["labels"]
    (auth,) = of_kind(docs, "TriggerAuthentication")
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "apiKey", "name": "temporal-cloud", "key": "api-key"}
    ]
    for wrt in of_kind(docs, "WorkerResourceTemplate"):
        if wrt["spec"]["template"]["kind"] == "ScaledObject":
            trigger = _temporal_trigger(wrt["spec"]["template"]["spec"]["triggers"])
            assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}


def test_controller_validation_is_strict(versioned: Versioned) -> None:
    """Broken controller objects fail validation (guards a vacuous check)."""
    docs = versioned("prod", CONTROLLER)
    broken: dict[str, list[Callable[[Doc], object]]] = {
        "WorkerDeployment": [
            lambda d: d["spec"].update(replica=1),
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(imagePullPolicy=1),
            lambda d: d["spec"]["rollout"].update(strategy="Progressive"),
            lambda d: d["spec"]["rollout"].update(
                strategy="Progressive", steps=[{"rampPercentage": 5, "pauseDuration": "10s"}]
            ),
            lambda d: d["spec"]["workerOptions"].update(unsafeCustomBuildID="-bad"),
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(ports=[{"name": "x"}]),
        ],
        "Connection": [
            lambda d: d["spec"].update(apiKeySecretRef={"name": "x", "key": "y"}),
            lambda d: d["spec"].update(hostPort="no-port"),
        ],
        "WorkerResourceTemplate": [
            lambda d: d["spec"].update(temporalWorkerDeploymentRef={"name": "x"}),
            lambda d: d["spec"]["template"]["spec"].update(scaleTargetRef={"name": "x"}),
            lambda d: d["spec"]["template"]["spec"].update(minReplicaCount="one"),
            lambda d: d["spec"]["template"]["spec"]["triggers"][0]["metadata"].update(
                namespace="x"
            ),
        ],
    }
    for kind, breakers in broken.items():
        # (a WorkerResourceTemplate carrying a ScaledObject)
        original = next(
            d
            for d in of_kind(docs, kind)
            if d["spec"].get("template", {}).get("kind", "ScaledObject") == "ScaledObject"
        )
        assert not validation_errors(original, KUBE_VERSIONS[-1]), kind
        for i, breaker in enumerate(breakers):
            doc = copy.deepcopy(original)
            breaker(doc)
            assert validation_errors(doc, KUBE_VERSIONS[-1]), (
                f"broken {kind} #{i} passed validation"
            )
    made = controller_deployment(of_kind(docs, "WorkerDeployment")[0], NEW)
    assert made["spec"]["template"]["metadata"]["labels"][CONTROLLER_BUILD_LABEL] == NEW


# -- wrong values fail with a clear message -----------------------------------------------------

TWO = TWO_BUILDS["defaults"]["builds"]
BAD_VALUES: dict[str, tuple[list[dict[str, Any]], list[str]]] = {
    "target not among the builds": (
        [{"queues": {"orders": {"builds": TWO, "rollout": {"target": "b9"}}}}],
        ["queue orders", 'rollout.target "b9" is not one of its builds', OLD, NEW],
    ),
    "target without builds": (
        [{"queues": {"orders": {"rollout": {"target": "b9"}}}}],
        ["queue orders", "no builds"],
    ),
    "duplicate build id": (
        [{"queues": {"orders": {"builds": [{"buildId": "b1"}, {"buildId": "b1"}]}}}],
        ["queue orders", "b1", "twice"],
    ),
    "build ids that only differ in punctuation": (
        [{"queues": {"orders": {"builds": [{"buildId": "b.1"}, {"buildId": "b_1"}]}}}],
        ["queue orders", "b.1", "b_1"],
    ),
    "build id with a slash": (
        [{"queues": {"orders": {"builds": [{"buildId": "main/1"}]}}}],
        ["buildId"],
    ),
    "numeric build id": ([{"queues": {"orders": {"builds": [{"buildId": 42}]}}}], ["buildId"]),
    "build without id": (
        [{"queues": {"orders": {"builds": [{"image": {"tag": "x"}}]}}}],
        ["buildId"],
    ),
    "target without replicas": (
        [TWO_BUILDS, {"queues": {"orders": {"replicas": 0}}}],
        ["queue orders, build d4e5f6: the rollout target has replicas 0"],
    ),
    "ramp of 100": (
        [TWO_BUILDS, {"queues": {"orders": {"rollout": {"rampPercentage": 100}}}}],
        ["rampPercentage"],
    ),
    "ramp of 0": (
        [TWO_BUILDS, {"queues": {"orders": {"rollout": {"rampPercentage": 0}}}}],
        ["rampPercentage"],
    ),
    "build hpa minimum above maximum": (
        [
            {
                "queues": {
                    "orders": {
                        "builds": [
                            {"buildId": "b1", "autoscaling": {"kind": "hpa", "minReplicas": 9}}
                        ]
                    }
                }
            }
        ],
        ["queue orders, build b1: autoscaling.minReplicas (9) is above"],
    ),
    "ramp with the controller": (
        [TWO_BUILDS, CONTROLLER, {"queues": {"orders": {"rollout": {"rampPercentage": 10}}}}],
        ["queue orders", "rollout.controller.strategy Progressive"],
    ),
    "progressive without steps": (
        [
            CONTROLLER,
            {"queues": {"orders": {"rollout": {"controller": {"strategy": "Progressive"}}}}},
        ],
        ["queue orders", "steps"],
    ),
    "steps that do not ramp up": (
        [
            CONTROLLER,
            {
                "queues": {
                    "orders": {
                        "rollout": {
                            "controller": {
                                "strategy": "Progressive",
                                "steps": [
                                    {"rampPercentage": 50, "pauseDuration": "1m"},
                                    {"rampPercentage": 20, "pauseDuration": "1m"},
                                ],
                            }
                        }
                    }
                }
            },
        ],
        ["queue orders", "20% follows 50%"],
    ),
    "mTLS and an API key with the controller": (
        [
            CONTROLLER,
            {"temporal": {"tls": {"clientCertSecret": "c"}, "apiKey": {"existingSecret": "k"}}},
        ],
        ["workerController.enabled", "mTLS Secret or an API key"],
    ),
    "controller keda on the whole queue": (
        [
            CONTROLLER,
            {
                "queues": {
                    "orders": {"autoscaling": {"kind": "keda", "keda": {"versionBacklog": False}}}
                }
            },
        ],
        ["queue orders", "versionBacklog"],
    ),
    "unknown controller strategy": (
        [CONTROLLER, {"defaults": {"rollout": {"controller": {"strategy": "Canary"}}}}],
        ["strategy", "Progressive"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_bad_versioning_values_are_rejected(helm: Helm, case: str) -> None:
    """Each case on values-dev.yaml with a database (so that it is not the state check that
    refuses a stateful queue's two builds or autoscaler)."""
    values, fragments = BAD_VALUES[case]
    proc = helm.template_proc("dev", values=[DATABASE, *values])
    assert proc.returncode != 0, f"{case}: rendered anyway"
    for fragment in fragments:
        assert fragment in proc.stderr, f"{case}: {fragment!r} not in:\n{proc.stderr}"
