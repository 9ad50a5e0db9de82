"""The e2e's compose project: the stack of `make up`, as project temporal-fleet-e2e on free
127.0.0.1 ports, with tests/e2e/compose.e2e.yml over docker-compose.yml and
docker-compose.queues.yml, without Grafana (a pulled image), and with a keyring and codec
token of the run's own. It is driven through scripts/fleet_compose.py and make, as a
developer drives it.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from compose_stack.containers import PROJECT_LABEL, health_of
from compose_stack.process import output
from compose_stack.stack import COMPOSE_FILES, Stack

from .commands import STATE, Failed, git, http_json, ok, run, say

PROJECT = "temporal-fleet-e2e"
NAMESPACE = "fleet"
# The host ports the stack publishes on 127.0.0.1, each a free one of its own for the run.
PUBLISHED_PORTS = (
    "FLEET_TEMPORAL_PORT",
    "FLEET_UI_PORT",
    "FLEET_PROMETHEUS_PORT",
    "FLEET_CODEC_PORT",
)
PSQL = ("psql", "-h", "/tmp", "-U", "fleet", "-d", "fleet", "-v", "ON_ERROR_STOP=1")
FLEET_COMPOSE = "scripts/fleet_compose.py"
# A container's `docker inspect` document.
Container = dict[str, Any]


def free_ports(count: int) -> list[int]:
    """``count`` different ports nothing listens on.

    Every socket stays bound until all are picked, as two binds to port 0 in a row can hand
    out the same one (and Docker then refuses the second publication with "port is already
    allocated").
    """
    with ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def stack_env(base: str) -> dict[str, str]:
    """The variables the e2e's stack runs with, over this process's environment."""
    return {
        # Fixed for the run: the image labels must not change between two builds.
        "FLEET_VERSION": git("describe", "--tags", "--always", "--dirty") or "dev",
        "FLEET_REVISION": git("rev-parse", "HEAD") or "unknown",
        "COMPOSE_PROJECT_NAME": PROJECT,
        "FLEET_COMPOSE_FILES": ":".join([*COMPOSE_FILES, "tests/e2e/compose.e2e.yml"]),
        "FLEET_GRAFANA": "0",
        "FLEET_NAMESPACE": NAMESPACE,
        "PYTHON_IMAGE": base,
        **dict(zip(PUBLISHED_PORTS, map(str, free_ports(len(PUBLISHED_PORTS))), strict=True)),
        # This run's own keyring and codec token (scripts/compose_stack/secrets.py writes them).
        "FLEET_SECRETS_DIR": str(STATE / "secrets"),
    }


class E2eStack(Stack):
    """The e2e's compose project (its containers: ``containers()``, ``workers()``)."""

    def script(self, *args: str, timeout: float = 1800) -> None:
        """scripts/fleet_compose.py ARGS (what make runs): its messages shown, the rest logged."""
        proc = self._logged(
            [sys.executable, FLEET_COMPOSE, *args],
            f"{FLEET_COMPOSE} {shlex.join(args)}",
            lambda line: (
                "[compose]" in line
                or bool(re.match(r"(image |temporal-fleet-| +[0-9.]+ MB +\(base)", line))
            ),
            timeout,
        )
        if proc.returncode != 0:
            raise Failed(
                f"{FLEET_COMPOSE} {shlex.join(args)} exited {proc.returncode}:\n"
                f"{(proc.stdout + proc.stderr)[-3000:]}"
            )

    def make(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """make ARGS on this stack: make deploy's messages shown, the rest logged."""
        return self._logged(
            ["make", *args], f"make {shlex.join(args)}", lambda line: "[deploy]" in line, timeout
        )

    def _logged(
        self, cmd: list[str], shown_as: str, shown: Callable[[str], bool], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd``, append its output to .data/e2e/compose.log and say its ``shown`` lines."""
        proc = run(*cmd, env=self.env, check=False, timeout=timeout)
        text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
        STATE.mkdir(parents=True, exist_ok=True)
        with (STATE / "compose.log").open("a") as log:
            log.write(f"\n$ {shown_as}\n{text}")
        for line in text.splitlines():
            if shown(line):
                say("   " + line)
        return proc

    def psql(self, sql: str) -> str:
        """Run SQL on the compose database (as its owner, over the container's socket)."""
        (db,) = self.containers("postgres")
        return self.exec(db, *PSQL, "-At", "-c", sql)

    def exec(self, container: Container, *cmd: str, timeout: float = 120) -> str:
        """The output of ``cmd`` run in ``container``."""
        return run("docker", "exec", container["Id"], *cmd, timeout=timeout).stdout

    def fleet(
        self, queue: str, *args: str, timeout: float = 120, via: Container | None = None
    ) -> str:
        """The output of `fleet ARGS` in ``via``, by default the first running ``queue``
        container."""
        if via is None:
            running = [c for c in self.containers(queue) if c["State"]["Running"]]
            if not running:
                raise Failed(f"no running {queue} container")
            via = running[0]
        return self.exec(via, "fleet", *args, timeout=timeout)

    def temporal(self, *args: str) -> Any:
        """The temporal CLI in the server's container, JSON output."""
        (server,) = self.containers("temporal")
        out = self.exec(
            server, "temporal", *args, "--address", "127.0.0.1:7233", "-n", NAMESPACE, "-o", "json"
        )
        return json.loads(out)

    def prometheus(self, path: str) -> Any:
        """The data of Prometheus's API answer at ``path``."""
        payload = http_json(f"http://127.0.0.1:{self.env['FLEET_PROMETHEUS_PORT']}{path}")
        if payload.get("status") != "success":
            raise Failed(f"Prometheus {path}: {payload}")
        return payload["data"]

    def promql(self, query: str) -> list[Any]:
        """The series of an instant PromQL query."""
        found = self.prometheus("/api/v1/query?" + urllib.parse.urlencode({"query": query}))
        return list(found["result"])


def dump_logs(stack: E2eStack) -> None:
    """Write every container's last logs to .data/e2e/compose-logs.txt; show the last three."""
    STATE.mkdir(parents=True, exist_ok=True)
    path = STATE / "compose-logs.txt"
    lines = []
    for c in stack.containers():
        logs = run("docker", "logs", "--tail", "200", c["Id"], check=False)
        lines.append(f"===== {c['Name']} ({health_of(c)})\n{logs.stdout}{logs.stderr}")
    path.write_text("\n".join(lines))
    say(f"   container logs: {path}")
    say("\n".join(line[-1500:] for line in lines[-3:]))


def tear_down(stack: E2eStack, base: str) -> None:
    """`make down` with the volumes, which must leave nothing of the project.

    A container of no service holds an endpoint on the stack's network meanwhile, as the
    engine at times still counts a removed one: down must still leave nothing.

    Raises:
        Failed: Down failed, or left a container, volume or network.
    """
    holder = output(
        "docker", "run", "-d", "--rm", "--network", f"{stack.project}_default",
        "--entrypoint", "sleep", base, "300",
    )  # fmt: skip
    try:
        stack.script("down", "--volumes")
        label = f"label={PROJECT_LABEL}={stack.project}"
        left = [
            *(output("docker", "ps", "-aq", "--filter", label) or "").split(),
            *(output("docker", "volume", "ls", "-q", "--filter", label) or "").split(),
            *(output("docker", "network", "ls", "-q", "--filter", label) or "").split(),
        ]
        if left:
            raise Failed(f"make down --volumes left {' '.join(left)}")
    finally:
        if holder:
            ok("docker", "rm", "-f", holder.strip())
