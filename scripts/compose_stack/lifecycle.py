"""Starting, stopping and scaling the stack: `make up`, `make down`, `make scale`."""

from __future__ import annotations

import json
import re
import time

from .containers import PROJECT_LABEL, WORKER, is_worker, name_of, running, service_role
from .health import wait
from .images import base_image, build_images, grafana_enabled
from .process import Failed, log, output, run, succeeds
from .stack import GRAFANA, Stack
from .urls import print_urls


def up(stack: Stack) -> None:
    """Build the images, start the stack, wait until it is healthy and print its URLs."""
    build_images(stack)
    profile = ["--profile", GRAFANA] if grafana_enabled(stack) else []
    log(f"starting the stack (project {stack.project})")
    keep = []
    if any(is_worker(c) and running(c) for c in stack.containers()):
        # Recreating a running worker with changed code would replace its build while
        # executions are pinned to it: running workers stay; `make deploy` rolls code out.
        keep = ["--no-recreate"]
        log(
            "running workers are kept as they are; "
            "roll out changed code with make deploy QUEUE=<queue>"
        )
    stack.compose(*profile, "up", "-d", "--no-build", "--remove-orphans", *keep, capture=False)
    wait(stack)
    print_urls(stack)


def down(stack: Stack, *, volumes: bool = False) -> None:
    """Stop and remove the containers (and with ``volumes`` the volumes) and the builds.

    Raises:
        Failed: Containers are left, or compose fails twice.
    """
    volume_args = ["--volumes"] if volumes else []
    args = ["--profile", GRAFANA, "down", "--remove-orphans", *volume_args]
    if stack.compose(*args, capture=False, check=False).returncode != 0:
        if left := [name_of(c) for c in stack.containers()]:
            raise Failed(f"compose down left containers: {' '.join(left)}")
        # The engine at times still counts a removed container's endpoint on the network
        # (moby/moby#42119), and compose stops there, before the volumes: release the
        # networks by hand, then let compose finish (a second failure is an error).
        stuck = release_networks(stack)
        if not stuck:
            stack.compose(*args, capture=False)
        else:
            # Nothing runs on it any more, and the next `make up` takes it over as it is.
            log(f"warning: the engine still holds network {', '.join(stuck)} (moby/moby#42119)")
            if volumes:
                remove_volumes(stack)
    # The deployed builds go with the containers they described.
    stack.builds_file.unlink(missing_ok=True)


def release_networks(stack: Stack, attempts: int = 10) -> list[str]:
    """Force-disconnect whatever the engine still lists on the project's networks and
    remove them, retrying while the engine settles; the networks left are returned."""
    stuck = []
    for network in _labelled(stack, "network"):
        attached = output("docker", "network", "inspect", "-f", "{{json .Containers}}", network)
        for endpoint in json.loads(attached or "null") or {}:
            succeeds("docker", "network", "disconnect", "--force", network, endpoint)
        for _ in range(attempts):
            if succeeds("docker", "network", "rm", network):
                log(f"removed network {network} after the engine released its endpoints")
                break
            time.sleep(1)
        else:
            stuck.append(network)
    return stuck


def remove_volumes(stack: Stack) -> None:
    """Remove the project's volumes (what `down --volumes` does after the networks)."""
    found = _labelled(stack, "volume")
    if found:
        run(["docker", "volume", "rm", *found], env=stack.env)
        log(f"removed {len(found)} volumes")


def scale(stack: Stack, queue: str, replicas: str) -> None:
    """Run ``replicas`` containers of ``queue``'s worker and wait until they are healthy.

    Raises:
        Failed: ``queue`` is no queue's worker, ``replicas`` no number, or the wait fails.
    """
    if not queue or not re.fullmatch(r"[0-9]+", replicas):
        raise Failed("usage: scale QUEUE N (e.g. scale orders 3)")
    services = stack.config()["services"]
    workers = [name for name, s in services.items() if service_role(s) == WORKER]
    if queue in services and queue not in workers:
        raise Failed(f"{queue} is not a queue's worker")
    if queue not in workers:
        raise Failed(f"no compose service {queue} (queues: {' '.join(workers)})")
    base_image(stack)
    only = ["--no-deps", "--no-build", "--no-recreate", "--scale", f"{queue}={replicas}"]
    stack.compose("up", "-d", *only, queue, capture=False)
    wait(stack)
    replicas_running = sum(1 for c in stack.containers(queue) if running(c))
    log(f"{queue}: {replicas_running} replica(s) running")


def _labelled(stack: Stack, kind: str) -> list[str]:
    """The ids of the project's networks or volumes (``kind``), by compose's label."""
    label = f"label={PROJECT_LABEL}={stack.project}"
    return run(["docker", kind, "ls", "-q", "--filter", label], env=stack.env).stdout.split()
