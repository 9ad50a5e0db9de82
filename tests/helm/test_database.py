"""The queues' state in the chart: DATABASE_URL from an existing Secret for the queues that keep
state (queues.<name>.keepsState, generated from the registry), the refusal of a stateful queue
running more than one pod without a database, the pre-install/pre-upgrade migration Jobs, and
the NetworkPolicy's way to the database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleet_devtools import derived as fleet_sync
from helm.rendering import (
    DATABASE,
    Doc,
    Helm,
    HelmFailed,
    assert_schema_valid,
    by_queue,
    chart_for,
    component,
    config_of,
    hook_annotations,
    jobs_of,
    named,
    of_kind,
    queue_of,
    release_policy,
    worker_container,
)

# slow: helm renders the chart.
pytestmark = pytest.mark.slow

SECRET_REF = {"secretKeyRef": {"name": "fleet-database", "key": "url"}}
DIGEST = "sha256:" + "cd" * 32


def _env(container: Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


def _migrations(docs: list[Doc]) -> dict[str, Doc]:
    return {queue_of(j): j for j in jobs_of(docs, "db-migrate")}


def _hook_policy(docs: list[Doc]) -> Doc:
    (policy,) = [d for d in of_kind(docs, "NetworkPolicy") if hook_annotations(d)]
    return policy


def _database_rules(policy: Doc) -> list[Doc]:
    return [r for r in policy["spec"]["egress"] if any(p["port"] == 5432 for p in r["ports"])]


# -- generated from the registry ----------------------------------------------------------------


def test_keeps_state_comes_from_the_registry(helm: Helm, registry: list[Any]) -> None:
    assert all(q.keeps_state for q in registry), "today every registered queue keeps state"
    # The chart pins it: values cannot pretend a stateful queue keeps none.
    proc = helm.template_proc("prod", values=[{"queues": {"orders": {"keepsState": False}}}])
    assert proc.returncode != 0 and "keepsState" in proc.stderr


@pytest.fixture(scope="module")
def mixed_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart generated for a registry where alpha keeps state and beta does not."""
    return chart_for(
        tmp_path_factory.mktemp("mixed-chart"),
        [
            fleet_sync.RegisteredQueue("alpha", "alpha-v1", ("A",), keeps_state=True),
            fleet_sync.RegisteredQueue("beta", "beta-v1", ("B",), keeps_state=False),
        ],
    )


def test_only_stateful_queues_get_the_database(helm: Helm, mixed_chart: Path) -> None:
    docs = helm.template(values=[DATABASE], chart=mixed_chart)
    deployments = by_queue(docs, "Deployment")
    assert _env(worker_container(deployments["alpha"]))["DATABASE_URL"] == SECRET_REF
    assert "DATABASE_URL" not in _env(worker_container(deployments["beta"]))
    assert sorted(_migrations(docs)) == ["alpha"]
    # Without a database, a queue that keeps no state still scales as it likes ...
    scaled = {"queues": {"beta": {"replicas": 4}, "alpha": {"replicas": 1}}}
    docs = helm.template(values=[scaled], chart=mixed_chart)
    assert by_queue(docs, "Deployment")["beta"]["spec"]["replicas"] == 4
    assert not _migrations(docs)
    # ... and a release whose stateful queues are all disabled runs no migration.
    off = {**DATABASE, "queues": {"alpha": {"enabled": False}}}
    docs = helm.template(values=[off], chart=mixed_chart)
    assert not [d for d in docs if component(d) == "db-migrate"]  # no Job, account or policy
    assert not [r for r in release_policy(docs)["spec"]["egress"] if r["ports"][0]["port"] == 5432]


# -- no database: one pod per stateful queue at most --------------------------------------------

NO_DATABASE = {"database": {"existingSecret": ""}}

REFUSED: dict[str, tuple[str | None, list[dict[str, Any]], str]] = {
    "prod without a database": (
        "prod",
        [NO_DATABASE],
        "queue agent keeps state and runs 3 replicas but database.existingSecret is not set",
    ),
    "staging without a database": (
        "staging",
        [NO_DATABASE],
        "queue agent keeps state and runs 2 replicas but database.existingSecret is not set",
    ),
    "an autoscaled stateful queue": (
        "dev",
        [{"queues": {"orders": {"autoscaling": {"kind": "hpa", "minReplicas": 1}}}}],
        "queue orders keeps state and autoscales (autoscaling.kind hpa) but database.existing",
    ),
    # (notifications: a short queue, which KEDA may scale to zero without a slots trigger.)
    "a stateful queue scaled by KEDA, even from zero to one": (
        "dev",
        [
            {
                "queues": {
                    "notifications": {
                        "autoscaling": {"kind": "keda", "minReplicas": 0, "maxReplicas": 1}
                    }
                }
            }
        ],
        "queue notifications keeps state and autoscales (autoscaling.kind keda)",
    ),
    "two replicas": (
        "dev",
        [{"queues": {"notifications": {"replicas": 2}}}],
        "queue notifications keeps state and runs 2 replicas but",
    ),
    "two live builds of one replica each": (
        "dev",
        [{"queues": {"orders": {"builds": [{"buildId": "b1"}, {"buildId": "b2"}]}}}],
        "queue orders keeps state and runs 2 replicas (over 2 builds) but",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_stateful_queue_with_several_pods_needs_a_database(helm: Helm, case: str) -> None:
    env, values, message = REFUSED[case]
    with pytest.raises(HelmFailed) as failed:
        helm.template(env, values=values)
    assert message in str(failed.value)
    # The message says what to do.
    assert "database.secretKey" in str(failed.value)
    assert "one replica and autoscaling.kind none" in str(failed.value)
    # With the database, the same values render.
    assert helm.template(env, values=[*values, DATABASE])


def test_disabled_queue_needs_no_database(helm: Helm) -> None:
    values = {"queues": {"orders": {"replicas": 3, "enabled": False}}}
    docs = helm.template("dev", values=[values])
    assert "orders" not in by_queue(docs, "Deployment")


def test_single_replica_stateful_queue_renders_without_a_database(
    rendered: Any, registry: list[Any]
) -> None:
    """dev: one fixed replica per queue, no database: each pod keeps its own SQLite file, whose
    schema an init container applies before the worker starts (nothing is shared, so there is
    no hook, no DATABASE_URL and no database egress)."""
    docs = rendered("dev")
    assert not jobs_of(docs, "db-migrate")
    assert len(of_kind(docs, "NetworkPolicy")) == 1
    assert not _database_rules(release_policy(docs))
    deployments = by_queue(docs, "Deployment")
    assert sorted(deployments) == [q.name for q in registry]
    for queue, deployment in deployments.items():
        assert deployment["spec"]["replicas"] == 1
        pod = deployment["spec"]["template"]["spec"]
        worker = worker_container(deployment)
        assert "DATABASE_URL" not in _env(worker)
        assert "DATABASE_URL" not in config_of(docs, deployment)
        (init,) = pod["initContainers"]
        assert init["name"] == "db-migrate"
        assert init["command"] == ["fleet", "db", "migrate", queue]
        assert init["image"] == worker["image"]
        # The worker's environment (so WORKER_STATE_DIR, if set, is the same file) and /tmp.
        assert init["envFrom"] == worker["envFrom"]
        assert init["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
        assert init["securityContext"] == worker["securityContext"]


# -- with a database: DATABASE_URL, the migration hook ------------------------------------------


def test_stateful_workers_get_database_url_from_the_secret(
    rendered: Any, registry: list[Any]
) -> None:
    docs = rendered("prod")
    deployments = by_queue(docs, "Deployment")
    for q in registry:
        deployment = deployments[q.name]
        env = _env(worker_container(deployment))
        assert env["DATABASE_URL"] == SECRET_REF
        # Referenced, never copied: no Secret, no ConfigMap entry, no init container.
        assert "DATABASE_URL" not in config_of(docs, deployment)
        assert "initContainers" not in deployment["spec"]["template"]["spec"]
    assert not of_kind(docs, "Secret")


def test_secret_key_is_configurable(helm: Helm) -> None:
    values = {"database": {"existingSecret": "pg-fleet", "secretKey": "DATABASE_URL"}}
    docs = helm.template("prod", values=[values])
    ref = {"secretKeyRef": {"name": "pg-fleet", "key": "DATABASE_URL"}}
    for deployment in of_kind(docs, "Deployment"):
        assert _env(worker_container(deployment))["DATABASE_URL"] == ref
    for job in _migrations(docs).values():
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert _env(container) == {"DATABASE_URL": ref}


def test_database_url_is_refused_as_a_plain_value(helm: Helm) -> None:
    url = {"queues": {"orders": {"env": {"DATABASE_URL": "postgresql://u:p@db:5432/fleet"}}}}
    proc = helm.template_proc("dev", values=[url])
    assert proc.returncode != 0
    assert "DATABASE_URL" in proc.stderr and "database.existingSecret" in proc.stderr


def test_migration_hook_jobs_run_before_the_workers(
    helm: Helm, rendered: Any, registry: list[Any]
) -> None:
    docs = rendered("prod")
    jobs = _migrations(docs)
    # One per enabled stateful queue: each queue image carries only its own migrations.
    assert sorted(jobs) == [q.name for q in registry if q.keeps_state]
    deployments = by_queue(docs, "Deployment")
    (namespace_job,) = jobs_of(docs, "namespace-job")
    for queue, job in jobs.items():
        hook = hook_annotations(job)
        assert set(hook["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
        assert set(hook["helm.sh/hook-delete-policy"].split(",")) == {
            "before-hook-creation",
            "hook-succeeded",
        }
        assert int(hook["helm.sh/hook-weight"]) > int(
            hook_annotations(namespace_job)["helm.sh/hook-weight"]
        )
        spec = job["spec"]
        assert 0 < spec["backoffLimit"] <= 3
        assert spec["activeDeadlineSeconds"] > 120  # above --wait
        # A bad setting (exit 2) fails at once; an unreachable database (exit 1) is retried.
        (rule,) = spec["podFailurePolicy"]["rules"]
        assert rule["action"] == "FailJob"
        assert rule["onExitCodes"] == {
            "containerName": "db-migrate",
            "operator": "In",
            "values": [2],
        }

        pod = spec["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"] == ["fleet", "db", "migrate", queue, "--wait", "120s"]
        worker_pod = deployments[queue]["spec"]["template"]["spec"]
        worker = worker_container(deployments[queue])
        assert container["image"] == worker["image"]
        # Only DATABASE_URL from the Secret: no Temporal connection, no ConfigMap (none exists
        # yet when a pre-install hook runs).
        assert _env(container) == {"DATABASE_URL": SECRET_REF}
        assert "envFrom" not in container
        # The workers' hardening, and a writable /tmp only.
        assert pod["securityContext"] == worker_pod["securityContext"]
        assert container["securityContext"] == worker["securityContext"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
        (tmp,) = pod["volumes"]
        assert tmp["name"] == "tmp" and "emptyDir" in tmp
        assert pod["restartPolicy"] == "Never"
        assert pod["automountServiceAccountToken"] is False
        # Its ServiceAccount is a hook too, created first.
        account = named(docs, "ServiceAccount", pod["serviceAccountName"])
        account_hook = hook_annotations(account)
        assert account_hook["helm.sh/hook"] == hook["helm.sh/hook"]
        assert int(account_hook["helm.sh/hook-weight"]) < int(hook["helm.sh/hook-weight"])
        # Not a worker: no Service, budget or autoscaler selects it.
        labels = spec["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == "db-migrate"
        for selecting in of_kind(docs, "Service") + of_kind(docs, "PodDisruptionBudget"):
            selector = selecting["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            assert not selector.items() <= labels.items()
        assert_schema_valid(job, account)
    # helm --no-hooks leaves them out with the other hooks.
    assert not of_kind(helm.template("prod", args=["--no-hooks"]), "Job")


def test_migration_job_settings_and_image(helm: Helm) -> None:
    values = {
        "image": {"requireDigest": True},
        "migrateJob": {
            "wait": "5m",
            "backoffLimit": 0,
            "activeDeadlineSeconds": 900,
            "resources": {
                "requests": {"cpu": "50m", "memory": "128Mi"},
                "limits": {"memory": "256Mi"},
            },
        },
        "queues": {
            "agent": {"enabled": False},
            # prod pins each queue's image (its placeholders replaced, as the pipeline does).
            "ingest": {"image": {"digest": DIGEST}},
            "notifications": {"image": {"digest": DIGEST}},
            # A versioned queue migrates from its newest build, whose revisions include every
            # older build's: rolled back to OLD, the schema NEW migrated is still known.
            "orders": {
                "builds": [
                    {"buildId": "old", "image": {"tag": "1.0.0", "digest": DIGEST}},
                    {"buildId": "new", "image": {"tag": "1.1.0", "digest": DIGEST}},
                ],
                "rollout": {"target": "old"},
            },
        },
    }
    docs = helm.template("prod", values=[values])
    jobs = _migrations(docs)
    assert sorted(jobs) == ["ingest", "notifications", "orders"]
    for job in jobs.values():
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["command"][-2:] == ["--wait", "5m"]
        assert container["image"].endswith(f"@{DIGEST}")
        assert container["resources"]["limits"] == {"memory": "256Mi"}
        assert job["spec"]["backoffLimit"] == 0
        assert job["spec"]["activeDeadlineSeconds"] == 900
    (container,) = jobs["orders"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"ghcr.io/temporal-fleet/temporal-fleet-orders:1.1.0@{DIGEST}"
    assert_schema_valid(*jobs.values())


def test_migration_jobs_with_the_worker_controller(helm: Helm) -> None:
    # b1 keeps the queue's image (prod's pinned one); b2 names its own, with its own digest.
    b2 = {"buildId": "b2", "image": {"tag": "2", "digest": DIGEST}}
    builds = {"defaults": {"builds": [{"buildId": "b1"}, b2]}}
    docs = helm.template("prod", values=[builds, {"workerController": {"enabled": True}}])
    jobs = _migrations(docs)
    assert len(jobs) == 4
    for job in jobs.values():
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["image"].endswith(f":2@{DIGEST}")
    for wd in of_kind(docs, "WorkerDeployment"):
        (worker,) = wd["spec"]["template"]["spec"]["containers"]
        assert _env(worker)["DATABASE_URL"] == SECRET_REF


def test_existing_service_account(helm: Helm) -> None:
    values = {"serviceAccount": {"create": False, "name": "fleet"}}
    docs = helm.template("prod", values=[values])
    assert not of_kind(docs, "ServiceAccount")
    for job in _migrations(docs).values():
        assert job["spec"]["template"]["spec"]["serviceAccountName"] == "fleet"


# -- NetworkPolicy: the way to the database -----------------------------------------------------


def test_network_policy_admits_the_database(rendered: Any) -> None:
    docs = rendered("prod")
    # The release's policy: every pod of the release may reach the database's CIDRs on 5432.
    (rule,) = _database_rules(release_policy(docs))
    assert rule["ports"] == [{"port": 5432, "protocol": "TCP"}]
    assert rule["to"] == [
        {"ipBlock": {"cidr": cidr}} for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
    ]
    # The migration Jobs' own hook policy: created before them, so they reach the database and
    # DNS even during the upgrade that introduces it (the release's policy is then still the
    # previous release's).
    hook_policy = _hook_policy(docs)
    hook = hook_annotations(hook_policy)
    assert set(hook["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    job = next(iter(_migrations(docs).values()))
    assert int(hook["helm.sh/hook-weight"]) < int(hook_annotations(job)["helm.sh/hook-weight"])
    spec = hook_policy["spec"]
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= labels.items()
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "db-migrate"
    for deployment in of_kind(docs, "Deployment"):
        worker_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert not spec["podSelector"]["matchLabels"].items() <= worker_labels.items()
    assert spec["policyTypes"] == ["Egress"]
    assert _database_rules(hook_policy) == [rule]
    dns = [r for r in spec["egress"] if r not in _database_rules(hook_policy)]
    assert [p["port"] for r in dns for p in r["ports"]] == [53, 53]
    assert all(r.get("to") for r in spec["egress"])
    assert_schema_valid(release_policy(docs), hook_policy)


def test_network_policy_database_peers_are_configurable(helm: Helm) -> None:
    in_cluster = {
        "database": {
            "egress": {
                "ports": [5432, 6432],
                "cidrs": [],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "databases"}},
                "podSelector": {"matchLabels": {"cnpg.io/cluster": "fleet"}},
            }
        }
    }
    docs = helm.template("prod", values=[in_cluster])
    expected = {
        "ports": [{"port": 5432, "protocol": "TCP"}, {"port": 6432, "protocol": "TCP"}],
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "databases"}},
                "podSelector": {"matchLabels": {"cnpg.io/cluster": "fleet"}},
            }
        ],
    }
    assert _database_rules(release_policy(docs)) == [expected]
    assert _database_rules(_hook_policy(docs)) == [expected]
    assert_schema_valid(*of_kind(docs, "NetworkPolicy"))
    # anyAddress: the ports, to any address (a database whose addresses change).
    anywhere = {"database": {"egress": {"cidrs": [], "anyAddress": True}}}
    (rule,) = _database_rules(release_policy(helm.template("prod", values=[anywhere])))
    assert rule == {"ports": [{"port": 5432, "protocol": "TCP"}]}


def test_network_policy_refuses_a_database_it_cannot_reach(helm: Helm) -> None:
    nowhere: dict[str, Any] = {"database": {"egress": {"cidrs": []}}}
    with pytest.raises(HelmFailed, match=r"database\.egress.*cidrs.*anyAddress"):
        helm.template("prod", values=[nowhere])
    # Without the NetworkPolicy nothing restricts the egress: no address is needed.
    docs = helm.template("prod", values=[nowhere, {"networkPolicy": {"enabled": False}}])
    assert not of_kind(docs, "NetworkPolicy")
    assert len(_migrations(docs)) == 4
    assert {component(d) for d in docs if hook_annotations(d)} == {
        "namespace-job",
        "db-migrate",
        "limits",
    }
