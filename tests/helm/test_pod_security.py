"""Every pod the chart renders meets the restricted Pod Security Standard
(https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted), in every
environment and in the versioned and worker-controller modes: the checks Pod Security Admission
makes of a namespace labelled pod-security.kubernetes.io/enforce: restricted (the codec
server's pod included)."""

from __future__ import annotations

from typing import Any

import pytest

from helm.rendering import CODEC_SERVER, DATABASE, ENVIRONMENTS, Doc, Helm, pod_specs

# slow: helm renders the chart.
pytestmark = pytest.mark.slow

BUILDS = {
    "defaults": {
        "builds": [
            # Each build pinned by its own digest, as prod requires (image.requireDigest).
            {"buildId": "b1", "image": {"tag": "a1b2c3", "digest": "sha256:" + "b1" * 32}},
            {"buildId": "b2", "image": {"tag": "d4e5f6", "digest": "sha256:" + "b2" * 32}},
        ]
    }
}
# Two builds are two pods of each queue: their state needs the database (dev has none).
MODES: dict[str, list[dict[str, Any]]] = {
    "plain": [],
    "versioned": [DATABASE, BUILDS],
    "worker controller": [DATABASE, BUILDS, {"workerController": {"enabled": True}}],
    # The codec server's pod, next to workers that mount the keyring.
    "codec server": [CODEC_SERVER],
}
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}


def restricted_violations(pod: Doc) -> list[str]:
    errors = []
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key) is True:
            errors.append(f"{key}: true")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            errors.append(f"volume {volume['name']}: {sorted(kinds - RESTRICTED_VOLUMES)}")
    pod_sc = pod.get("securityContext", {})
    for sysctl in pod_sc.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            errors.append(f"sysctl {sysctl['name']}")
    containers = (
        pod.get("containers", [])
        + pod.get("initContainers", [])
        + pod.get("ephemeralContainers", [])
    )
    for container in containers:
        name = container["name"]
        sc = container.get("securityContext", {})
        if sc.get("privileged") is True:
            errors.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            errors.append(f"{name}: allowPrivilegeEscalation is not false")
        capabilities = sc.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            errors.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            errors.append(f"{name}: adds capabilities {capabilities['add']}")
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            errors.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            errors.append(f"{name}: runAsUser 0")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            errors.append(f"{name}: seccompProfile {seccomp}")
        if sc.get("procMount", "Default") != "Default":
            errors.append(f"{name}: procMount {sc['procMount']}")
        apparmor = sc.get("appArmorProfile", pod_sc.get("appArmorProfile", {})).get("type")
        if apparmor == "Unconfined":
            errors.append(f"{name}: appArmorProfile Unconfined")
        se_type = sc.get("seLinuxOptions", pod_sc.get("seLinuxOptions", {})).get("type")
        if se_type not in (None, "", "container_t", "container_init_t", "container_kvm_t"):
            errors.append(f"{name}: seLinuxOptions.type {se_type}")
        for port in container.get("ports", []):
            if port.get("hostPort"):
                errors.append(f"{name}: hostPort {port['hostPort']}")
    return errors


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_pod_meets_the_restricted_standard(helm: Helm, env: str, mode: str) -> None:
    docs = helm.template(env, values=MODES[mode])
    found = [
        (f"{doc['kind']}/{doc['metadata']['name']}{where}", pod)
        for doc in docs
        for where, pod in pod_specs(doc)
    ]
    assert found, "no pod rendered"
    kinds = {name.split("/")[0] for name, _ in found}
    assert "Job" in kinds  # the hooks' pods are checked too
    if mode == "codec server":
        assert any("codec-server" in name for name, _ in found)
    errors = [f"{name}: {error}" for name, pod in found for error in restricted_violations(pod)]
    assert not errors, "\n".join(errors)


def test_the_checker_sees_violations() -> None:
    bad: Doc = {
        "hostNetwork": True,
        "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
        "containers": [
            {"name": "c", "securityContext": {"privileged": True, "capabilities": {"add": ["ALL"]}}}
        ],
    }
    errors = restricted_violations(bad)
    for fragment in (
        "hostNetwork",
        "volume host",
        "c: privileged",
        "allowPrivilegeEscalation",
        "drop ALL",
        "adds capabilities",
        "runAsNonRoot",
        "seccompProfile",
    ):
        assert any(fragment in e for e in errors), f"{fragment} not in {errors}"
