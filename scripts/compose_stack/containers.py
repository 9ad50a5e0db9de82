"""What a container's `docker inspect` document, or a service of the compose config, says.

Containers are told apart by their labels, never by their names: the role label
io.temporal-fleet.role is `worker` on every queue's worker (docker-compose.yml's x-worker,
which a deployed build's service copies) and `one-shot` on the one-shots (x-namespace-init,
x-db-migrate), which must exit 0; every other container must be running, and healthy if it
has a health check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# docker-compose.yml's role label: worker (a queue's worker), one-shot (must exit 0), or none.
ROLE_LABEL = "io.temporal-fleet.role"
WORKER = "worker"
ONE_SHOT = "one-shot"
# The queue a worker image serves (the worker Dockerfile's label).
QUEUE_LABEL = "io.temporal-fleet.queue"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


def labels_of(container: Mapping[str, Any]) -> dict[str, str]:
    """The container's labels (its image's and compose's)."""
    return dict(container["Config"].get("Labels") or {})


def service_of(container: Mapping[str, Any]) -> str:
    """The compose service the container belongs to."""
    return labels_of(container).get(SERVICE_LABEL, "")


def role_of(container: Mapping[str, Any]) -> str:
    """worker, one-shot, or empty (see ROLE_LABEL)."""
    return labels_of(container).get(ROLE_LABEL, "")


def is_worker(container: Mapping[str, Any]) -> bool:
    """Whether the container is a queue's worker."""
    return role_of(container) == WORKER


def queue_of(container: Mapping[str, Any]) -> str:
    """The queue a worker container serves.

    Its image's label, since a deployed build's service is <queue>-<build id>.
    """
    labels = labels_of(container)
    return labels.get(QUEUE_LABEL) or labels.get(SERVICE_LABEL, "")


def name_of(container: Mapping[str, Any]) -> str:
    """The container's name, without the engine's leading slash."""
    return str(container["Name"]).lstrip("/")


def running(container: Mapping[str, Any]) -> bool:
    """Whether the container runs now."""
    return bool(container["State"]["Running"])


def health_of(container: Mapping[str, Any]) -> str:
    """healthy, unhealthy or starting (its health check's), none (it has none), or down."""
    if not running(container):
        return "down"
    return str((container["State"].get("Health") or {}).get("Status", "none"))


def service_role(service: Mapping[str, Any]) -> str:
    """The role label of a service of the compose config (labels as a mapping or a list)."""
    labels = service.get("labels") or {}
    if isinstance(labels, list):
        labels = dict(str(item).partition("=")[::2] for item in labels)
    return str(labels.get(ROLE_LABEL, ""))
