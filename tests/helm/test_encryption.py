"""Payload encryption in the chart: the keyring of encryption.existingSecret, mounted read-only
as a file (FLEET_ENCRYPTION_KEYS_FILE) in every pod that reads or writes Temporal payloads (the
workers, temporal-worker-controller's workers, the promotion hook Job with its replay gate, the
codec server) and in no other (the namespace Job and the schema migrations touch no payload);
no key material or token anywhere in values or output; and the codec server (codecServer): a
hardened Deployment, a ClusterIP Service, a PodDisruptionBudget and a NetworkPolicy letting
only the configured peers in and nothing out, refused without the values it needs.
"""

from __future__ import annotations

import base64
import copy
import os
import re
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from helm.rendering import (
    CHART,
    CODEC_SERVER,
    DATABASE,
    ENVIRONMENTS,
    Doc,
    Helm,
    HelmFailed,
    assert_schema_valid,
    by_queue,
    component,
    jobs_of,
    of_kind,
    pod_specs,
    queue_of,
    release_policy,
    worker_container,
)

# slow: helm renders the chart.
pytestmark = pytest.mark.slow

KEYRING = {"encryption": {"existingSecret": "fleet-encryption-keys"}}
KEYS_FILE = "/etc/fleet/encryption/keys"
TOKEN_FILE = "/etc/fleet/codec-token/token"
KEYRING_VOLUME = {
    "name": "encryption-keys",
    "secret": {
        "secretName": "fleet-encryption-keys",
        "defaultMode": 0o440,
        "items": [{"key": "keys", "path": "keys"}],
    },
}
KEYRING_MOUNT = {"name": "encryption-keys", "mountPath": "/etc/fleet/encryption", "readOnly": True}
BUILDS = {
    "defaults": {
        "builds": [
            # Each build pinned by its own digest, as prod requires (image.requireDigest).
            {"buildId": "b1", "image": {"tag": "a1b2c3", "digest": "sha256:" + "b1" * 32}},
            {"buildId": "b2", "image": {"tag": "d4e5f6", "digest": "sha256:" + "b2" * 32}},
        ]
    }
}
CONTROLLER = {"workerController": {"enabled": True}}
# The containers that handle payloads, and those that never do.
PAYLOAD_CONTAINERS = {"worker", "promote", "codec-server"}
NO_PAYLOAD_CONTAINERS = {"namespace", "db-migrate", "limits"}
# A keyring entry: KEY_ID:BASE64_OF_32_BYTES.
KEY_ENTRY = re.compile(r"[A-Za-z0-9._-]{1,64}:[A-Za-z0-9+/]{43}=")


def _env(container: Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


def _containers(pod: Doc) -> list[Doc]:
    return list(pod.get("initContainers") or []) + list(pod["containers"])


def _pods(docs: list[Doc]) -> list[tuple[str, Doc]]:
    return [
        (f"{doc['kind']}/{doc['metadata']['name']}{where}", pod)
        for doc in docs
        for where, pod in pod_specs(doc)
    ]


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels and matchExpressions) selects these labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _workers(docs: list[Doc]) -> dict[str, Doc]:
    """The workers' Deployments by queue (not the codec server's)."""
    return {queue_of(d): d for d in of_kind(docs, "Deployment") if component(d) != "codec-server"}


def _codec(docs: list[Doc]) -> dict[str, Doc]:
    """The codec server's objects by kind (one of each)."""
    found = [d for d in docs if component(d) == "codec-server"]
    kinds = [d["kind"] for d in found]
    assert len(kinds) == len(set(kinds)), kinds
    return {d["kind"]: d for d in found}


def _codec_container(docs: list[Doc]) -> Doc:
    (container,) = _codec(docs)["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "codec-server"
    return dict(container)


def _new_key() -> str:
    """A keyring entry as `fleet codec keygen` prints it."""
    return f"k1:{base64.b64encode(os.urandom(32)).decode()}"


# -- the keyring --------------------------------------------------------------------------------


def test_no_keyring_without_the_secret(rendered: Any) -> None:
    """dev sets no encryption.existingSecret: nothing is mounted, no variable set."""
    docs = rendered("dev")
    for name, pod in _pods(docs):
        assert all(v["name"] != "encryption-keys" for v in pod.get("volumes") or []), name
        for container in _containers(pod):
            assert not {"FLEET_ENCRYPTION_KEYS", "FLEET_ENCRYPTION_KEYS_FILE"} & set(
                _env(container)
            ), name
    assert not [d for d in docs if component(d) == "codec-server"]


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_staging_and_prod_encrypt_with_their_secret(rendered: Any, env: str) -> None:
    docs = rendered(env)
    deployments = of_kind(docs, "Deployment")
    assert deployments
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert _env(worker_container(deployment))["FLEET_ENCRYPTION_KEYS_FILE"] == KEYS_FILE
        assert KEYRING_MOUNT in worker_container(deployment)["volumeMounts"]
        assert KEYRING_VOLUME in pod["volumes"]
    # The path is not in the ConfigMaps: only pods that mount the file are told of it.
    for config in of_kind(docs, "ConfigMap"):
        assert not any(k.startswith("FLEET_ENCRYPTION") for k in config.get("data") or {})


MODES: dict[str, tuple[str, list[dict[str, Any]]]] = {
    # dev has no database: each stateful pod's init container migrates its own SQLite file.
    "dev, init containers": ("dev", [KEYRING]),
    "prod": ("prod", []),
    "prod, two builds and the promotion hooks": ("prod", [BUILDS]),
    "prod, worker controller": ("prod", [BUILDS, CONTROLLER]),
    "staging, codec server": ("staging", [CODEC_SERVER]),
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_pod_that_handles_payloads_mounts_the_keyring(helm: Helm, mode: str) -> None:
    env, values = MODES[mode]
    docs = helm.template(env, values=[*values, KEYRING])
    pods = _pods(docs)
    seen: set[str] = set()
    for name, pod in pods:
        containers = _containers(pod)
        seen |= {c["name"] for c in containers}
        handles = [c for c in containers if c["name"] in PAYLOAD_CONTAINERS]
        for container in containers:
            env_vars = _env(container)
            mounts = container.get("volumeMounts") or []
            if container["name"] in PAYLOAD_CONTAINERS:
                assert env_vars["FLEET_ENCRYPTION_KEYS_FILE"] == KEYS_FILE, name
                assert "FLEET_ENCRYPTION_KEYS" not in env_vars, name
                assert KEYRING_MOUNT in mounts, name
            else:
                assert container["name"] in NO_PAYLOAD_CONTAINERS, container["name"]
                assert "FLEET_ENCRYPTION_KEYS_FILE" not in env_vars, name
                assert all(m["name"] != "encryption-keys" for m in mounts), name
        volumes = [v for v in pod.get("volumes") or [] if v["name"] == "encryption-keys"]
        # Read-only, the keyring's key only, readable by the pod's group only.
        assert volumes == ([KEYRING_VOLUME] if handles else []), name
    expected = {"worker", "namespace", "limits"}
    if "builds" in mode and "controller" not in mode:
        expected |= {"promote", "db-migrate"}
    if "init" in mode:
        expected.add("db-migrate")
    if "codec" in mode:
        expected.add("codec-server")
    assert expected <= seen, f"{mode}: no {sorted(expected - seen)} pod rendered"
    if "controller" in mode:
        assert_schema_valid(*of_kind(docs, "WorkerDeployment"))


def test_promotion_hook_reads_the_histories_with_the_keyring(helm: Helm) -> None:
    docs = helm.template("prod", values=[BUILDS])
    jobs = jobs_of(docs, "promote")
    assert len(jobs) == len(by_queue(docs, "Deployment")) > 0
    for job in jobs:
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"][:3] == ["fleet", "deploy", "rollout"]
        assert _env(container)["FLEET_ENCRYPTION_KEYS_FILE"] == KEYS_FILE
        assert KEYRING_VOLUME in pod["volumes"]
    assert_schema_valid(*jobs)


def test_keyring_secret_key_is_configurable(helm: Helm) -> None:
    values = {"encryption": {"existingSecret": "keyring", "secretKey": "fleet.keys"}}
    docs = helm.template("prod", values=[values])
    for deployment in of_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == "encryption-keys"]
        # The file is always .../keys, whatever the Secret's key is called.
        assert volume["secret"]["secretName"] == "keyring"
        assert volume["secret"]["items"] == [{"key": "fleet.keys", "path": "keys"}]
        assert _env(worker_container(deployment))["FLEET_ENCRYPTION_KEYS_FILE"] == KEYS_FILE
        assert_schema_valid(deployment)


@pytest.mark.parametrize("where", ["secretEnv", "extraEnv"])
@pytest.mark.parametrize("variable", ["FLEET_ENCRYPTION_KEYS", "FLEET_ENCRYPTION_KEYS_FILE"])
def test_a_queue_giving_its_own_keyring_conflicts_with_the_secret(
    helm: Helm, where: str, variable: str
) -> None:
    ref = {"secret": "other-keys", "key": "keys"}
    given: Any = {variable: ref} if where == "secretEnv" else [{"name": variable, "value": "/k"}]
    values = {"queues": {"orders": {where: given}}}
    with pytest.raises(HelmFailed) as failed:
        helm.template("prod", values=[values])
    message = str(failed.value)
    assert f"queue orders: {variable} is set in {where}" in message
    assert "encryption.existingSecret" in message
    # Without the chart's keyring, a queue may still bring its own from a Secret.
    if where == "secretEnv" and variable == "FLEET_ENCRYPTION_KEYS":
        docs = helm.template("dev", values=[values])
        env = _env(worker_container(by_queue(docs, "Deployment")["orders"]))
        assert env[variable] == {"secretKeyRef": {"name": "other-keys", "key": "keys"}}


# -- no key material, no token ------------------------------------------------------------------


def test_no_key_material_or_token_in_the_output(helm: Helm) -> None:
    proc = helm.template_proc("prod", values=[BUILDS, CODEC_SERVER])
    assert proc.returncode == 0, proc.stderr
    assert not KEY_ENTRY.search(proc.stdout)
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert not of_kind(docs, "Secret")
    for name, pod in _pods(docs):
        for container in _containers(pod):
            env_vars = _env(container)
            # Only the file variables, naming paths under the read-only Secret mounts.
            for variable in ("FLEET_ENCRYPTION_KEYS", "FLEET_CODEC_TOKEN"):
                assert variable not in env_vars, name
            for variable, path in (
                ("FLEET_ENCRYPTION_KEYS_FILE", KEYS_FILE),
                ("FLEET_CODEC_TOKEN_FILE", TOKEN_FILE),
            ):
                assert env_vars.get(variable, path) == path, name
    for config in of_kind(docs, "ConfigMap"):
        assert not any(k.startswith("FLEET_") for k in config.get("data") or {})


SECRETS_AS_VALUES: dict[str, tuple[dict[str, Any], str]] = {
    "a keyring under encryption": ({"encryption": {"keys": _new_key()}}, "keys"),
    "a keyring as a queue variable": (
        {"queues": {"orders": {"env": {"FLEET_ENCRYPTION_KEYS": _new_key()}}}},
        "FLEET_ENCRYPTION_KEYS",
    ),
    "a token under codecServer": ({"codecServer": {"token": "x" * 32}}, "token"),
    "a token as a queue variable": (
        {"queues": {"orders": {"env": {"FLEET_CODEC_TOKEN": "x" * 32}}}},
        "FLEET_CODEC_TOKEN",
    ),
}


@pytest.mark.parametrize("case", sorted(SECRETS_AS_VALUES))
def test_keys_and_tokens_are_refused_as_values(helm: Helm, case: str) -> None:
    values, name = SECRETS_AS_VALUES[case]
    proc = helm.template_proc("prod", values=[values])
    assert proc.returncode != 0, f"{case}: rendered anyway"
    assert name in proc.stderr


# -- the codec server ---------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_codec_server_renders_hardened_and_valid(helm: Helm, env: str) -> None:
    docs = helm.template(env, values=[CODEC_SERVER])
    codec = _codec(docs)
    assert sorted(codec) == [
        "Deployment",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    assert_schema_valid(*codec.values())
    name = f"fleet-{env}-temporal-fleet-codec-server"
    assert {d["metadata"]["name"] for d in codec.values()} == {name}
    deployment = codec["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    container = _codec_container(docs)
    # `fleet codec-server`, listening on every address of the pod, CORS for the UI's origin.
    assert container["command"] == ["fleet", "codec-server"]
    assert container["args"] == [
        "--host",
        "0.0.0.0",
        "--port",
        "8081",
        "--origins",
        "https://temporal.example.com",
    ]
    assert container["ports"] == [{"name": "http", "containerPort": 8081, "protocol": "TCP"}]
    # The image with the fleet CLI: by default the first enabled queue's.
    first_queue = worker_container(_workers(docs)["agent"])
    assert container["image"] == first_queue["image"]
    # Both secrets as files from read-only Secret volumes, never as variables.
    assert _env(container) == {
        "FLEET_ENCRYPTION_KEYS_FILE": KEYS_FILE,
        "FLEET_CODEC_TOKEN_FILE": TOKEN_FILE,
    }
    assert "envFrom" not in container
    assert container["volumeMounts"] == [
        {"name": "tmp", "mountPath": "/tmp"},
        KEYRING_MOUNT,
        {"name": "codec-token", "mountPath": "/etc/fleet/codec-token", "readOnly": True},
    ]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(volumes) == {"tmp", "encryption-keys", "codec-token"}
    assert volumes["encryption-keys"] == KEYRING_VOLUME
    assert volumes["codec-token"]["secret"] == {
        "secretName": "fleet-codec-token",
        "defaultMode": 0o440,
        "items": [{"key": "token", "path": "token"}],
    }
    assert "emptyDir" in volumes["tmp"]
    # TCP probes: no health endpoint, and anything without the token is a 401.
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["tcpSocket"] == {"port": "http"}
        assert "httpGet" not in container[probe]
    # Hardened like the workers.
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["limits"]["memory"]
    # Its own ServiceAccount, without a token and without the workers' annotations.
    account = codec["ServiceAccount"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert account["automountServiceAccountToken"] is False
    # The ClusterIP Service and the budget select exactly its pods.
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    service = codec["Service"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == labels
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8081, "targetPort": "http", "protocol": "TCP"}
    ]
    assert codec["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == labels
    assert codec["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    # No worker, Service or ServiceMonitor mixes with it.
    for other in of_kind(docs, "Deployment"):
        if other is not deployment:
            assert not selects(other["spec"]["selector"], labels)
    for monitor in of_kind(docs, "ServiceMonitor"):
        assert not selects(monitor["spec"]["selector"], service["metadata"]["labels"])


def test_codec_server_network_policy_lets_only_its_peers_in_and_nothing_out(
    helm: Helm, rendered: Any
) -> None:
    docs = helm.template("prod", values=[CODEC_SERVER])
    policy = _codec(docs)["NetworkPolicy"]
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    # No egress at all: it calls neither Temporal nor DNS.
    assert spec["egress"] == []
    (ingress,) = spec["ingress"]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert ingress["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}},
        }
    ]
    # Policies add up: the release's (DNS, Temporal, the database) must not select it.
    release = release_policy(docs)["spec"]["podSelector"]
    pods = {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["metadata"]["labels"]
        for d in of_kind(docs, "Deployment") + of_kind(docs, "Job")
    }
    codec_pod = f"Deployment/{_codec(docs)['Deployment']['metadata']['name']}"
    assert codec_pod in pods
    for name, labels in pods.items():
        assert selects(spec["podSelector"], labels) == (name == codec_pod), name
        assert selects(release, labels) == (name != codec_pod), name
    assert_schema_valid(policy, release_policy(docs))
    # Without the codec server the release's policy is as before.
    assert "matchExpressions" not in release_policy(rendered("prod"))["spec"]["podSelector"]


def test_codec_server_network_policy_peers_are_configurable(helm: Helm) -> None:
    values = copy.deepcopy(CODEC_SERVER)
    values["codecServer"]["networkPolicy"] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "auth"}},
        # Helm merges maps into the defaults': null drops a default label.
        "podSelector": {"matchLabels": {"app": "oauth2-proxy", "app.kubernetes.io/name": None}},
        "from": [{"ipBlock": {"cidr": "10.1.0.0/16"}}],
    }
    policy = _codec(helm.template("prod", values=[values]))["NetworkPolicy"]
    assert policy["spec"]["ingress"][0]["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "auth"}},
            "podSelector": {"matchLabels": {"app": "oauth2-proxy"}},
        },
        {"ipBlock": {"cidr": "10.1.0.0/16"}},
    ]
    assert_schema_valid(policy)
    # No peer at all: nobody gets in (kubectl port-forward still does), nothing out.
    values["codecServer"]["networkPolicy"] = {
        "namespaceSelector": None,
        "podSelector": None,
        "from": [],
    }
    policy = _codec(helm.template("prod", values=[values]))["NetworkPolicy"]
    assert policy["spec"]["ingress"] == [] and policy["spec"]["egress"] == []
    assert_schema_valid(policy)
    # networkPolicy.enabled false: no policy at all, the codec server's neither.
    docs = helm.template("prod", values=[CODEC_SERVER, {"networkPolicy": {"enabled": False}}])
    assert not of_kind(docs, "NetworkPolicy")
    assert "Deployment" in _codec(docs)


def test_codec_server_image(helm: Helm) -> None:
    digest = "sha256:" + "ef" * 32
    # The first enabled queue's image, or the next one's.
    docs = helm.template("prod", values=[CODEC_SERVER, {"queues": {"agent": {"enabled": False}}}])
    ingest = worker_container(_workers(docs)["ingest"])["image"]
    assert _codec_container(docs)["image"] == ingest
    # Its own image, pinned.
    own = copy.deepcopy(CODEC_SERVER)
    own["codecServer"]["image"] = {
        "repository": "ghcr.io/acme/fleet",
        "tag": "1.2.3",
        "digest": digest,
        "pullPolicy": "Always",
    }
    container = _codec_container(helm.template("prod", values=[own]))
    assert container["image"] == f"ghcr.io/acme/fleet:1.2.3@{digest}"
    assert container["imagePullPolicy"] == "Always"
    # image.requireDigest: its own image needs a digest; a borrowed one is pinned already.
    queues = ["agent", "ingest", "notifications", "orders"]
    pinned = {"queues": {q: {"image": {"digest": digest}} for q in queues}}
    del own["codecServer"]["image"]["digest"]
    with pytest.raises(HelmFailed, match=r"codecServer: image\.digest is required"):
        helm.template("prod", values=[own, pinned, {"image": {"requireDigest": True}}])
    docs = helm.template("prod", values=[CODEC_SERVER, pinned, {"image": {"requireDigest": True}}])
    assert _codec_container(docs)["image"].endswith(digest)


def test_codec_server_settings(helm: Helm) -> None:
    values = copy.deepcopy(CODEC_SERVER)
    values["codecServer"].update(
        {
            "replicas": 3,
            "origins": ["https://ui.example.com", "http://127.0.0.1:8233"],
            "tokenKey": "bearer",
            "port": 9443,
            "service": {"port": 443},
            "pdb": {"minAvailable": 2},
            "podAnnotations": {"example.com/team": "platform"},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "priorityClassName": "fleet-high",
        }
    )
    values["serviceAccount"] = {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:r"}}
    docs = helm.template("prod", values=[values])
    codec = _codec(docs)
    assert_schema_valid(*codec.values())
    deployment = codec["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = _codec_container(docs)
    assert deployment["spec"]["replicas"] == 3
    args = container["args"]
    assert args[args.index("--port") + 1] == "9443"
    assert args[args.index("--origins") + 1] == "https://ui.example.com,http://127.0.0.1:8233"
    assert container["ports"][0]["containerPort"] == 9443
    assert codec["Service"]["spec"]["ports"][0] == {
        "name": "http",
        "port": 443,
        "targetPort": "http",
        "protocol": "TCP",
    }
    (token,) = [v for v in pod["volumes"] if v["name"] == "codec-token"]
    assert token["secret"]["items"] == [{"key": "bearer", "path": "token"}]
    assert codec["PodDisruptionBudget"]["spec"]["minAvailable"] == 2
    assert "maxUnavailable" not in codec["PodDisruptionBudget"]["spec"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["example.com/team"] == "platform"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["priorityClassName"] == "fleet-high"
    # The workers' cloud role stays theirs.
    assert not codec["ServiceAccount"]["metadata"].get("annotations")
    # No budget; an existing ServiceAccount.
    values["codecServer"]["pdb"] = {"enabled": False}
    values["serviceAccount"] = {"create": False, "name": "fleet"}
    codec = _codec(helm.template("prod", values=[values]))
    assert sorted(codec) == ["Deployment", "NetworkPolicy", "Service"]
    assert codec["Deployment"]["spec"]["template"]["spec"]["serviceAccountName"] == "fleet"


MISSING: dict[str, tuple[dict[str, Any], list[str]]] = {
    "no origins": ({"codecServer": {"origins": []}}, ["codecServer.origins"]),
    "no token Secret": ({"codecServer": {"tokenSecret": ""}}, ["codecServer.tokenSecret"]),
    "no keyring Secret": ({"encryption": {"existingSecret": ""}}, ["encryption.existingSecret"]),
}


@pytest.mark.parametrize("case", sorted(MISSING))
def test_codec_server_fails_naming_what_it_is_missing(helm: Helm, case: str) -> None:
    values, named_values = MISSING[case]
    # On dev, which has no keyring of its own.
    with pytest.raises(HelmFailed) as failed:
        helm.template("dev", values=[CODEC_SERVER, values])
    message = str(failed.value)
    assert "codecServer.enabled needs" in message
    for name in ["encryption.existingSecret", "codecServer.tokenSecret", "codecServer.origins"]:
        assert (name in message) == (name in named_values), f"{case}: {name}\n{message}"


def test_codec_server_fails_naming_everything_missing(helm: Helm) -> None:
    with pytest.raises(HelmFailed) as failed:
        helm.template("dev", values=[{"codecServer": {"enabled": True}}])
    for name in ["encryption.existingSecret", "codecServer.tokenSecret", "codecServer.origins"]:
        assert name in str(failed.value)
    # Disabled, none of them is needed.
    assert not _codec(helm.template("dev", values=[{"codecServer": {"enabled": False}}]))


BAD_CODEC_VALUES: dict[str, tuple[dict[str, Any], str]] = {
    "an origin with a path": ({"origins": ["https://ui.example.com/"]}, "origins"),
    "two origins in one": ({"origins": ["https://a.example.com,https://b.example.com"]}, "origins"),
    "an origin without a scheme": ({"origins": ["ui.example.com"]}, "origins"),
    "a privileged port": ({"port": 80}, "port"),
    "a token Secret that is no name": ({"tokenSecret": "Fleet Token"}, "tokenSecret"),
    "negative replicas": ({"replicas": -1}, "replicas"),
}


@pytest.mark.parametrize("case", sorted(BAD_CODEC_VALUES))
def test_bad_codec_server_values_are_rejected(helm: Helm, case: str) -> None:
    bad, fragment = BAD_CODEC_VALUES[case]
    values = copy.deepcopy(CODEC_SERVER)
    values["codecServer"].update(bad)
    proc = helm.template_proc("prod", values=[values])
    assert proc.returncode != 0, f"{case}: rendered anyway"
    assert fragment in proc.stderr


def test_prod_example_of_the_codec_server_renders(helm: Helm) -> None:
    """values-prod.yaml shows the codec server commented out: uncommented, it renders."""
    lines = (CHART / "values-prod.yaml").read_text().splitlines()
    start = lines.index("# codecServer:")
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line.removeprefix("# ").removeprefix("#"))
    example = yaml.safe_load("\n".join(block))
    assert example["codecServer"]["enabled"] is True
    docs = helm.template("prod", values=[example])
    codec = _codec(docs)
    assert_schema_valid(*codec.values())
    args = _codec_container(docs)["args"]
    assert args[args.index("--origins") + 1] == ",".join(example["codecServer"]["origins"])
    # Its selectors replace the defaults' labels (same keys).
    assert codec["NetworkPolicy"]["spec"]["ingress"][0]["from"] == [
        example["codecServer"]["networkPolicy"]
    ]


def test_codec_server_with_the_worker_controller_and_builds(helm: Helm) -> None:
    """The codec server does not depend on how the workers run."""
    docs = helm.template("prod", values=[DATABASE, BUILDS, CONTROLLER, CODEC_SERVER])
    codec = _codec(docs)
    assert "Deployment" in codec
    assert_schema_valid(*codec.values())
