"""End-to-end test of the container stack on a real Docker engine: `make e2e`.

    python3 tests/e2e/run_e2e.py

Not a pytest module (pytest collects test_*.py only): it needs root or a Docker engine, and
takes minutes. What it does, failing at the first check that does not hold:

1. Installs what is missing (Debian's docker.io and docker-compose) and starts dockerd when
   no engine answers (`dockerd --iptables=false`, log in .data/e2e/; stopped at the end).
2. Uses the official base image (PYTHON_IMAGE) if it is present or can be pulled; otherwise
   builds the local stand-in from Debian packages (deploy/docker/build-base-image.sh), as
   `make images` does (scripts/compose_stack/, which this test imports for the stack's
   files, base image and containers).
3. Builds every image and starts the stack (scripts/fleet_compose.py images / up: the code of
   `make images` / `make up`) as project temporal-fleet-e2e on free 127.0.0.1 ports, with
   tests/e2e/compose.e2e.yml over docker-compose.yml and docker-compose.queues.yml, and
   without Grafana (a pulled image).
4. Runs a workflow on every queue through the `fleet` CLI inside the worker containers,
   against the containerized server, and checks each result.
5. Payload encryption (on in the stack, a keyring of the run's own): the server's history of an
   order holds binary/encrypted payloads only, `fleet query` decodes, the Web UI's settings
   name the codec server, which decodes the order with the token and refuses without it, and
   the temporal CLI shows the history decoded through it.
   Every worker container is healthy; Prometheus has exactly the worker containers as
   targets of job temporal-workers, every one up.
6. Scales orders to 2: both replicas are healthy, scraped, and polling (the server lists a
   poller from each container).
7. Kills (`docker kill`) the orders container running a slow shipping activity: the workflow
   still completes, its activity retried on the other replica. Then the stack recovers to
   healthy (make scale starts the killed container again).
8. Shared state: with both orders replicas on the compose PostgreSQL, holds the ledger's
   payment writes, starts 12 orders and kills the replica running a charge whose provider
   side has committed; every order is then charged exactly once at the provider, the ledger
   records one charge each, and the charges in flight ran again on the other replica.
9. Crashes a worker (SIGKILL to its process, not through Docker): the restart policy brings
   it back, healthy and scraped.
10. Deploys a changed orders image (a copy of the sources with an incompatible change to
   OrderWorkflow, which is PINNED) with `make deploy` while three orders wait for their
   confirmation: the new build runs beside the old one and becomes current through the replay
   gate; the waiting orders complete on the old build, a new order on the new one; no
   workflow failed and no workflow task failed; `make retire` then removes the drained old
   build's containers, and Prometheus scrapes the new ones as queue orders.
11. Tears the stack down (volumes too) and prints each phase's duration and the image sizes.

Environment: PYTHON_IMAGE (base image), E2E_DOCKERD_ARGS (flags of a dockerd this script
starts; default --iptables=false), E2E_KEEP=1 (leave the stack and the engine running).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The stack's files, base image and containers, as make up | scale | images | deploy know them.
sys.path.insert(0, str(ROOT / "scripts"))
import compose_stack.stack  # noqa: E402
from compose_stack import images  # noqa: E402
from compose_stack.containers import PROJECT_LABEL, health_of, queue_of, service_of  # noqa: E402
from compose_stack.process import Failed as StackFailed  # noqa: E402
from compose_stack.process import output  # noqa: E402

STATE = ROOT / ".data" / "e2e"
PROJECT = "temporal-fleet-e2e"
COMPOSE_FILES = ":".join([*compose_stack.stack.COMPOSE_FILES, "tests/e2e/compose.e2e.yml"])
NAMESPACE = "fleet"
# The host ports the stack publishes on 127.0.0.1, each a free one of its own for the run.
PUBLISHED_PORTS = (
    "FLEET_TEMPORAL_PORT",
    "FLEET_UI_PORT",
    "FLEET_PROMETHEUS_PORT",
    "FLEET_CODEC_PORT",
)
RUN = uuid.uuid4().hex[:8]


class Failed(StackFailed):
    """A check that does not hold."""


# -- output and timing ----------------------------------------------------------------------


@dataclass
class Report:
    phases: list[tuple[str, float]] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        say(f"== {name}")
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.phases.append((name, time.monotonic() - t0))

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        if not ok:
            raise Failed(f"{name}: {detail}" if detail else name)
        self.passed.append(name)
        say(f"   ok  {name}" + (f" ({detail})" if detail else ""))


def say(text: str) -> None:
    print(text, flush=True)


# -- processes ------------------------------------------------------------------------------


def run(
    *cmd: str,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 600,
    quiet: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; with ``quiet`` capture its output (shown if it fails)."""
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=quiet,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        output = ((proc.stdout or "") + (proc.stderr or ""))[-4000:]
        raise Failed(f"`{shlex.join(cmd)}` exited {proc.returncode}\n{output}")
    return proc


def ok(*cmd: str) -> bool:
    try:
        return run(*cmd, check=False, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def wait_for(what: str, probe: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    """Call ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise Failed(f"{what}: not within {timeout:.0f}s (last: {last!r})")


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def free_ports(count: int) -> list[int]:
    """``count`` different ports nothing listens on: every socket stays bound until all are
    picked, as two binds to port 0 in a row can hand out the same one (and Docker then refuses
    the second publication with "port is already allocated")."""
    with ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def apt_install(*packages: str) -> None:
    if os.geteuid() != 0:
        raise Failed(f"{', '.join(packages)} missing: install them, or run as root")
    say(f"   apt-get install {' '.join(packages)}")
    run("apt-get", "update", "-qq", timeout=600)
    run(
        "apt-get",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        *packages,
        env={"DEBIAN_FRONTEND": "noninteractive"},
        timeout=900,
    )


# -- the engine -----------------------------------------------------------------------------


def ensure_tools() -> None:
    missing = []
    if not shutil.which("docker") or (not ok("docker", "info") and not shutil.which("dockerd")):
        missing.append("docker.io")
    if not ok("docker", "compose", "version") and not shutil.which("docker-compose"):
        missing.append("docker-compose")
    if missing:
        apt_install(*missing)


def ensure_engine() -> subprocess.Popen[bytes] | None:
    """Start dockerd unless an engine answers; return the process this script started."""
    if ok("docker", "info"):
        return None
    if os.geteuid() != 0:
        raise Failed("no Docker engine answers, and starting dockerd needs root")
    STATE.mkdir(parents=True, exist_ok=True)
    args = shlex.split(os.environ.get("E2E_DOCKERD_ARGS", "--iptables=false"))
    say(f"   starting dockerd {' '.join(args)} (log: {STATE / 'dockerd.log'})")
    with (STATE / "dockerd.log").open("ab") as log:
        proc = subprocess.Popen(
            ["dockerd", *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for("dockerd answers", lambda: proc.poll() is None and ok("docker", "info"), 90)
    except Failed:
        stop_engine(proc)
        tail = (STATE / "dockerd.log").read_text(errors="replace")[-3000:]
        raise Failed(f"dockerd did not start:\n{tail}") from None
    return proc


def stop_engine(proc: subprocess.Popen[bytes]) -> None:
    say(f"   stopping the dockerd this test started (pid {proc.pid})")
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def base_image(report: Report) -> str:
    """The official base image if present or pullable, else the local stand-in (built once)."""
    image = images.base_image(compose_stack.stack.Stack.from_env())
    stand_in = image == images.LOCAL_PYTHON_IMAGE
    report.check("base image", True, f"{image} (stand-in)" if stand_in else image)
    return image


# -- the stack ------------------------------------------------------------------------------


class Stack(compose_stack.stack.Stack):
    """The e2e's compose project (its containers: ``containers()``, ``workers()``)."""

    def script(self, *args: str, timeout: float = 1800) -> None:
        """scripts/fleet_compose.py ARGS (what make runs): its messages shown, the rest logged."""
        STATE.mkdir(parents=True, exist_ok=True)
        script = "scripts/fleet_compose.py"
        proc = run(sys.executable, script, *args, env=self.env, check=False, timeout=timeout)
        output = proc.stdout + proc.stderr
        with (STATE / "compose.log").open("a") as log:
            log.write(f"\n$ {script} {shlex.join(args)}\n{output}")
        for line in output.splitlines():
            if "[compose]" in line or re.match(
                r"(image |temporal-fleet-| +[0-9.]+ MB +\(base)", line
            ):
                say("   " + re.sub(r"\x1b\[[0-9;]*m", "", line))
        if proc.returncode != 0:
            raise Failed(f"{script} {shlex.join(args)} exited {proc.returncode}:\n{output[-3000:]}")

    def psql(self, sql: str) -> str:
        """Run SQL on the compose database (as its owner, over the container's socket)."""
        (db,) = self.containers("postgres")
        return self.exec(db, *PSQL, "-At", "-c", sql)

    def exec(self, container: dict[str, Any], *cmd: str, timeout: float = 120) -> str:
        return run("docker", "exec", container["Id"], *cmd, timeout=timeout).stdout

    def fleet(self, queue: str, *args: str, timeout: float = 120) -> str:
        running = [c for c in self.containers(queue) if c["State"]["Running"]]
        if not running:
            raise Failed(f"no running {queue} container")
        return self.exec(running[0], "fleet", *args, timeout=timeout)

    def temporal(self, *args: str) -> Any:
        """The temporal CLI in the server's container, JSON output."""
        (server,) = self.containers("temporal")
        out = self.exec(
            server, "temporal", *args, "--address", "127.0.0.1:7233", "-n", NAMESPACE, "-o", "json"
        )
        return json.loads(out)

    def prometheus(self, path: str) -> Any:
        payload = http_json(f"http://127.0.0.1:{self.env['FLEET_PROMETHEUS_PORT']}{path}")
        if payload.get("status") != "success":
            raise Failed(f"Prometheus {path}: {payload}")
        return payload["data"]


def ip_of(container: dict[str, Any]) -> str:
    networks = container["NetworkSettings"]["Networks"]
    return next(iter(networks.values()))["IPAddress"] if networks else ""


# -- the checks -----------------------------------------------------------------------------

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James Sq",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}


def order(order_id: str, quantity: int) -> str:
    return json.dumps(
        {
            "order_id": order_id,
            "customer_id": "cust-e2e",
            "payment_token": "tok_visa",
            "items": [{"sku": "sku-widget", "quantity": quantity, "unit_price_cents": 1250}],
            "shipping_address": ADDRESS,
        }
    )


def confirm_order(stack: Stack, order_id: str) -> None:
    workflow_id = f"order-{order_id}"
    wait_for(
        f"{workflow_id} awaiting confirmation",
        lambda: (
            json.loads(stack.fleet("orders", "query", workflow_id, "status"))["stage"]
            == "awaiting_confirmation"
        ),
        60,
        every=0.5,
    )
    stack.fleet("orders", "signal", workflow_id, "confirm", '{"confirmed_by": "e2e"}')


def check_orders(stack: Stack, report: Report) -> None:
    order_id = f"E2E-{RUN}"
    started = json.loads(
        stack.fleet("orders", "start", "orders", "OrderWorkflow", order(order_id, 2))
    )
    report.check("orders: started", started["started"], started["workflow_id"])
    confirm_order(stack, order_id)
    result = json.loads(stack.fleet("orders", "result", f"order-{order_id}"))
    report.check(
        "orders: OrderWorkflow completed",
        str(result.get("tracking_number", "")).startswith("trk-")
        and result.get("charged_cents") == 2500,
        f"tracking {result.get('tracking_number')}",
    )


def start_and_wait(stack: Stack, queue: str, workflow: str, arg: dict[str, Any]) -> Any:
    return json.loads(stack.fleet(queue, "start", queue, workflow, json.dumps(arg), "--wait"))


def check_notifications(stack: Stack, report: Report) -> None:
    result = start_and_wait(
        stack,
        "notifications",
        "NotifyWorkflow",
        {
            "message_id": f"e2e-{RUN}",
            "recipient": "user-42",
            "subject": "Your order shipped",
            "body": "It is on its way.",
            "channels": ["email", "push"],
        },
    )
    channels = sorted(d["channel"] for d in result["deliveries"])
    report.check(
        "notifications: NotifyWorkflow completed", channels == ["email", "push"], str(channels)
    )


def check_ingest(stack: Stack, report: Report) -> None:
    result = start_and_wait(
        stack,
        "ingest",
        "BatchIngestWorkflow",
        {
            "batch_id": f"e2e-{RUN}",
            "item_count": 20,
            "chunk_size": 5,
            "max_concurrent_children": 2,
        },
    )
    accepted = result["totals"]["accepted"]
    report.check(
        "ingest: BatchIngestWorkflow completed", accepted == 20, f"{accepted} of 20 accepted"
    )


def check_agent(stack: Stack, report: Report) -> None:
    result = start_and_wait(
        stack,
        "agent",
        "AgentWorkflow",
        {"task_id": f"e2e-{RUN}", "prompt": "What is 12 * (3 + 4) - 5?"},
    )
    report.check(
        "agent: AgentWorkflow completed",
        result["answer"] == "12 * (3 + 4) - 5 = 79.",
        repr(result["answer"]),
    )


WORKFLOWS: dict[str, Callable[[Stack, Report], None]] = {
    "orders": check_orders,
    "notifications": check_notifications,
    "ingest": check_ingest,
    "agent": check_agent,
}


def check_healthy(stack: Stack, report: Report, what: str) -> None:
    workers = stack.workers()
    unhealthy = [(c["Name"], health_of(c)) for c in workers if health_of(c) != "healthy"]
    report.check(
        f"{what}: every worker container healthy",
        bool(workers) and not unhealthy,
        f"{len(workers)} containers" if not unhealthy else str(unhealthy),
    )


def check_images(stack: Stack, report: Report) -> None:
    """Worker containers: non-root, read-only root filesystem; images: OCI labels."""
    workers = stack.workers()
    loose = [
        c["Name"]
        for c in workers
        if c["Config"]["User"] != "10001:10001" or not c["HostConfig"]["ReadonlyRootfs"]
    ]
    report.check(
        "workers run as uid 10001 on a read-only root filesystem",
        bool(workers) and not loose,
        str(loose) if loose else f"{len(workers)} containers",
    )
    images = sorted({c["Config"]["Image"] for c in stack.containers()})
    wanted = ("title", "description", "source", "version", "revision", "licenses")
    unlabelled = []
    for image in images:
        labels = json.loads(
            run("docker", "image", "inspect", "-f", "{{json .Config.Labels}}", image).stdout
        )
        missing = [w for w in wanted if f"org.opencontainers.image.{w}" not in (labels or {})]
        if missing:
            unlabelled.append(f"{image}: {missing}")
    report.check(
        "every image carries the OCI labels",
        not unlabelled,
        str(unlabelled) if unlabelled else f"{len(images)} images",
    )


def worker_targets(stack: Stack) -> dict[tuple[str, str], str]:
    """Prometheus's targets of job temporal-workers: (queue, ip) -> health."""
    data = stack.prometheus("/api/v1/targets?state=active")
    return {
        (t["labels"].get("queue", ""), t["labels"]["instance"].rsplit(":", 1)[0]): t["health"]
        for t in data["activeTargets"]
        if t["labels"].get("job") == "temporal-workers"
    }


def check_memory_limits(stack: Stack, report: Report) -> None:
    """Every worker container runs under compose's memory limit and exports it, beside its
    RSS and threads: what the memory alerts and the queue dashboard read."""
    limit = 512 * 2**20  # docker-compose.yml's default mem_limit
    query = (
        'workerkit_memory_limit_bytes{job="temporal-workers"} '
        'and on (instance) workerkit_process_threads{job="temporal-workers"} > 4 '
        'and on (instance) process_resident_memory_bytes{job="temporal-workers"} '
        f"< {limit}"
    )
    running = sum(1 for c in stack.workers() if c["State"]["Running"])

    def exported() -> list[Any] | None:
        found = stack.prometheus("/api/v1/query?" + urllib.parse.urlencode({"query": query}))
        return found["result"] if len(found["result"]) == running else None

    series = wait_for("every worker's memory limit, threads and RSS", exported, 60, every=2)
    limits = {float(s["value"][1]) for s in series}
    report.check(
        "every worker exports its container's memory limit, threads and RSS (Prometheus)",
        limits == {float(limit)},
        f"{len(series)} workers, limits {sorted(limits)}",
    )


def check_targets(stack: Stack, report: Report, what: str) -> None:
    expected = {(queue_of(c), ip_of(c)) for c in stack.workers() if c["State"]["Running"]}

    def converged() -> dict[tuple[str, str], str] | None:
        targets = worker_targets(stack)
        if set(targets) == expected and all(h == "up" for h in targets.values()):
            return targets
        return None

    try:
        targets = wait_for("Prometheus targets", converged, 90, every=2)
    except Failed:
        raise Failed(
            f"{what}: Prometheus targets {worker_targets(stack)} != containers {expected}"
        ) from None
    queues = sorted({q for q, _ in targets})
    report.check(
        f"{what}: Prometheus scrapes every worker container, all up",
        True,
        f"{len(targets)} targets: {', '.join(queues)}",
    )


def hostname(identity: str) -> str:
    """The host of an SDK identity (``pid@hostname``): a container's short id."""
    return identity.rsplit("@", 1)[-1]


def check_scale(stack: Stack, report: Report) -> list[dict[str, Any]]:
    stack.script("scale", "orders", "2")
    replicas = [c for c in stack.containers("orders") if c["State"]["Running"]]
    report.check("scale: 2 orders replicas running", len(replicas) == 2, str(len(replicas)))
    check_healthy(stack, report, "scale")
    check_targets(stack, report, "scale")
    short_ids = {c["Id"][:12] for c in replicas}

    def polling_hosts() -> set[str] | None:
        # --legacy-mode lists every poller, versioned ones included (the workers are).
        described = stack.temporal(
            "task-queue", "describe", "--task-queue", "orders-v1", "--legacy-mode"
        )
        hosts = {hostname(p.get("identity", "")) for p in _pollers(described)}
        return hosts if short_ids <= hosts else None

    hosts = wait_for("both orders replicas poll orders-v1", polling_hosts, 60, every=2)
    report.check(
        "scale: both orders replicas poll orders-v1 (server's poller list)",
        True,
        f"pollers on {sorted(short_ids & hosts)}",
    )

    query = 'max by (instance) (temporal_num_pollers{job="temporal-workers",queue="orders"}) > 0'

    def polling_instances() -> int | None:
        n = len(
            stack.prometheus("/api/v1/query?" + urllib.parse.urlencode({"query": query}))["result"]
        )
        return n if n == 2 else None

    n = wait_for("temporal_num_pollers > 0 on both orders replicas", polling_instances, 60, 2)
    report.check("scale: temporal_num_pollers > 0 on both replicas (Prometheus)", True, f"{n}")
    return replicas


def _pollers(described: Any) -> list[dict[str, Any]]:
    """Every poller entry of `temporal task-queue describe -o json`, whatever its nesting."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pollers" and isinstance(value, list):
                    found.extend(p for p in value if isinstance(p, dict))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(described)
    return found


def running(stack: Stack, workflow_id: str, activity_type: str) -> dict[str, Any] | None:
    """The workflow's pending ``activity_type`` activity if a worker runs it now."""
    described = stack.temporal("workflow", "describe", "-w", workflow_id)
    for activity in described.get("pendingActivities") or []:
        if (
            activity.get("activityType", {}).get("name") == activity_type
            and "STARTED" in str(activity.get("state", ""))
            and activity.get("lastWorkerIdentity")
        ):
            return dict(activity)
    return None


def pending_ship(stack: Stack, workflow_id: str) -> dict[str, Any] | None:
    activity = running(stack, workflow_id, "ship_order")
    return activity if activity and activity.get("heartbeatDetails") else None


def check_kill(stack: Stack, report: Report, replicas: list[dict[str, Any]]) -> None:
    order_id = f"E2E-KILL-{RUN}"
    workflow_id = f"order-{order_id}"
    # 24 units at 0.5 s each (compose.e2e.yml): a 12 s shipping activity, heartbeating.
    stack.fleet("orders", "start", "orders", "OrderWorkflow", order(order_id, 24))
    confirm_order(stack, order_id)
    activity = wait_for(
        "ship_order running and heartbeating", lambda: pending_ship(stack, workflow_id), 60, 0.5
    )
    host = hostname(activity["lastWorkerIdentity"])
    (victim,) = [c for c in replicas if c["Id"].startswith(host)]
    survivor = next(c for c in replicas if c["Id"] != victim["Id"])
    run("docker", "kill", victim["Id"])
    killed_at = time.monotonic()
    say(f"   killed {victim['Name']} ({host}) mid-activity (attempt {activity.get('attempt', 1)})")

    result = json.loads(
        run("docker", "exec", survivor["Id"], "fleet", "result", workflow_id, timeout=180).stdout
    )
    recovery = time.monotonic() - killed_at
    report.check(
        "kill: the order completes after its worker is killed mid-activity",
        str(result.get("tracking_number", "")).startswith("trk-"),
        f"{recovery:.1f}s after the kill",
    )
    history = stack.temporal("workflow", "show", "-w", workflow_id)
    events = history.get("events", history) if isinstance(history, dict) else history
    ship_started = [
        e["activityTaskStartedEventAttributes"]
        for e in events
        if "activityTaskStartedEventAttributes" in e
        and _scheduled_type(events, e["activityTaskStartedEventAttributes"]) == "ship_order"
    ]
    last = ship_started[-1] if ship_started else {}
    report.check(
        "kill: shipping was retried (attempt > 1) by another worker",
        int(last.get("attempt", 1)) > 1 and hostname(last.get("identity", "")) != host,
        f"attempt {last.get('attempt')} on {hostname(last.get('identity', '?'))}",
    )


PSQL = ("psql", "-h", "/tmp", "-U", "fleet", "-d", "fleet", "-v", "ON_ERROR_STOP=1")


def pending_charge(stack: Stack, workflow_id: str) -> str | None:
    """The worker (container id prefix) running the order's charge right now, if any."""
    activity = running(stack, workflow_id, "charge_payment")
    return hostname(activity["lastWorkerIdentity"]) if activity else None


def check_charge_kill(stack: Stack, report: Report) -> None:
    """Two replicas on the compose PostgreSQL; one killed right after the provider charged."""
    orders = [f"E2E-CHARGE-{i:02d}-{RUN}" for i in range(12)]
    replicas = [c for c in stack.containers("orders") if c["State"]["Running"]]
    # Hold the ledger's payment writes: each charge then stops right after the provider
    # took it (its own transaction, committed) and before the ledger records it.
    (db,) = stack.containers("postgres")
    holder = subprocess.Popen(
        ["docker", "exec", "-i", db["Id"], *PSQL, "-q", "-At"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write("BEGIN;\nLOCK TABLE orders_payments IN EXCLUSIVE MODE;\nSELECT 'locked';\n")
    holder.stdin.flush()
    if holder.stdout.readline().strip() != "locked":
        raise Failed("could not lock orders_payments")
    try:
        for order_id in orders:
            stack.fleet("orders", "start", "orders", "OrderWorkflow", order(order_id, 1))
        like = f"E2E-CHARGE-%-{RUN}"

        def victim() -> str | None:
            charged = int(
                stack.psql(
                    f"SELECT count(*) FROM orders_provider_charges WHERE order_id LIKE '{like}'"
                )
            )
            if charged < 2:
                return None
            for order_id in orders:
                host = pending_charge(stack, f"order-{order_id}")
                if host:
                    return host
            return None

        host = wait_for("a charge in flight, the provider's side committed", victim, 90, 1)
        (killed,) = [c for c in replicas if c["Id"].startswith(host)]
        run("docker", "kill", killed["Id"])
        say(f"   killed {killed['Name']} ({host}) between the provider's charge and the ledger")
    finally:
        holder.stdin.write("ROLLBACK;\n")
        holder.stdin.close()
        holder.wait(timeout=30)
    for order_id in orders:
        confirm_order(stack, order_id)
    for order_id in orders:
        stack.fleet("orders", "result", f"order-{order_id}", timeout=240)
    counts = stack.psql(
        "SELECT count(*), count(DISTINCT order_id), min(n), max(n) FROM (SELECT order_id, "
        f"count(*) AS n FROM orders_provider_charges WHERE order_id LIKE '{like}' "
        "GROUP BY order_id) AS per_order"
    ).strip()
    report.check(
        "charge kill: every order charged exactly once at the provider (PostgreSQL)",
        counts == f"{len(orders)}|{len(orders)}|1|1",
        f"orders|distinct|min|max charges: {counts}",
    )
    recorded = stack.psql(
        f"SELECT count(*) FROM orders_events WHERE kind = 'charged' AND order_id LIKE '{like}'"
    ).strip()
    report.check(
        "charge kill: the shared ledger records one charge per order",
        recorded == str(len(orders)),
        f"{recorded} charged events for {len(orders)} orders",
    )
    retried = 0
    for order_id in orders:
        events = stack.temporal("workflow", "show", "-w", f"order-{order_id}")
        events = events.get("events", events) if isinstance(events, dict) else events
        for e in events:
            attrs = e.get("activityTaskStartedEventAttributes")
            if attrs and _scheduled_type(events, attrs) == "charge_payment":
                retried += int(attrs.get("attempt", 1)) > 1
    report.check(
        "charge kill: charges in flight on the killed worker ran again elsewhere",
        retried > 0,
        f"{retried} charge attempts after the first",
    )


# Payloads that are never encoded: search attributes (the server indexes them) and the SDK's
# patch markers (a patch id, written by the SDK itself); neither carries the workflow's data.
UNENCODED = {"searchAttributes", "markerRecordedEventAttributes"}


def payloads_in(node: Any) -> list[tuple[str, str]]:
    """Every payload of a `temporal ... -o json` document, but the UNENCODED ones:
    (encoding, decoded data text)."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        meta = node.get("metadata")
        if isinstance(meta, dict) and "encoding" in meta and "data" in node:
            encoding = base64.b64decode(meta["encoding"]).decode(errors="replace")
            data = base64.b64decode(node.get("data") or "").decode(errors="replace")
            found.append((encoding, data))
        for key, value in node.items():
            if key not in UNENCODED:
                found += payloads_in(value)
    elif isinstance(node, list):
        for item in node:
            found += payloads_in(item)
    return found


def check_encryption(stack: Stack, report: Report) -> None:
    """The stack runs encrypted: what the server stores, the UI's codec, the codec server."""
    order_id = f"E2E-ENC-{RUN}"
    workflow_id = f"order-{order_id}"
    stack.fleet("orders", "start", "orders", "OrderWorkflow", order(order_id, 1))
    secrets = (ADDRESS["line1"], "tok_visa", "cust-e2e")
    stored = payloads_in(stack.temporal("workflow", "show", "-w", workflow_id))
    leaked = [d for _, d in stored if any(x in d for x in secrets)]
    report.check(
        "encryption: the server's history holds binary/encrypted payloads only",
        bool(stored) and {e for e, _ in stored} == {"binary/encrypted"} and not leaked,
        f"{len(stored)} payloads, encodings {sorted({e for e, _ in stored})}",
    )
    status = json.loads(stack.fleet("orders", "query", workflow_id, "status"))
    report.check(
        "encryption: fleet query decodes (the workers' keyring)",
        status["shipping_address"]["line1"] == ADDRESS["line1"],
        status["stage"],
    )

    ui = f"http://127.0.0.1:{stack.env['FLEET_UI_PORT']}"
    endpoint = str(http_json(f"{ui}/api/v1/settings").get("Codec", {}).get("Endpoint", ""))
    codec = f"http://127.0.0.1:{stack.env['FLEET_CODEC_PORT']}"
    report.check(
        "encryption: the Web UI is configured with the codec server", endpoint == codec, endpoint
    )
    token = (Path(stack.env["FLEET_SECRETS_DIR"]) / "codec-token").read_text().strip()
    started = stack.temporal("workflow", "show", "-w", workflow_id)
    events = started.get("events", started) if isinstance(started, dict) else started
    body = json.dumps(
        {"payloads": events[0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"]}
    ).encode()

    def decode(headers: dict[str, str]) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{endpoint}/decode",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "X-Namespace": NAMESPACE, **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return int(resp.status), json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, None

    code, decoded = decode({"Authorization": f"Bearer {token}", "Origin": ui})
    plain = [d for _, d in payloads_in(decoded)] if decoded else []
    report.check(
        "encryption: the codec server (the UI's endpoint) decodes the order with the token",
        code == 200 and any(ADDRESS["line1"] in d for d in plain),
        f"HTTP {code}",
    )
    report.check(
        "encryption: the codec server refuses a request without the token",
        decode({"Origin": ui})[0] == 401 and decode({"Authorization": "Bearer wrong"})[0] == 401,
        "401",
    )
    shown = stack.temporal(
        "workflow",
        "show",
        "-w",
        workflow_id,
        "--codec-endpoint",
        "http://codec-server:8081",
        "--codec-auth",
        f"Bearer {token}",
    )
    report.check(
        "encryption: the temporal CLI shows the history decoded through the codec server",
        any(ADDRESS["line1"] in d for _, d in payloads_in(shown)),
        "temporal workflow show --codec-endpoint http://codec-server:8081",
    )
    confirm_order(stack, order_id)
    stack.fleet("orders", "result", workflow_id)


def check_restart(stack: Stack, report: Report) -> None:
    """A worker process that dies (not stopped through Docker) is restarted and gets healthy."""
    (container,) = stack.containers("notifications")
    before = int(container["RestartCount"])
    try:
        os.kill(int(container["State"]["Pid"]), signal.SIGKILL)
        how = "SIGKILL to its process"
    except PermissionError:
        stack.exec(container, "kill", "-TERM", "1")
        how = "SIGTERM inside the container"

    def restarted() -> dict[str, Any] | None:
        (now,) = stack.containers("notifications")
        return now if int(now["RestartCount"]) > before and health_of(now) == "healthy" else None

    now = wait_for("the crashed worker restarted and healthy", restarted, 120, every=1)
    report.check(
        "restart: a crashed worker is restarted (unless-stopped) and healthy again",
        True,
        f"{how}; restarts {before} -> {now['RestartCount']}",
    )
    check_targets(stack, report, "restart")


# An incompatible change to OrderWorkflow (PINNED): a timer before its first step. Orders in
# flight must finish on the build that started them; new orders run the new code.
_CHANGE = (
    "    async def run(self, order: Order) -> OrderResult:\n",
    "        await workflow.sleep(timedelta(milliseconds=1))  # the e2e's changed build\n",
)


# A build that fails every order at once: a rollout of it must be rolled back at its first step.
_FAILING = (
    _CHANGE[0],
    '        raise ApplicationError("this build refuses every order", non_retryable=True)\n',
)


def changed_tree(name: str = "changed", change: tuple[str, str] = _CHANGE) -> Path:
    """A copy of the sources the images build from, with OrderWorkflow changed."""
    tree = STATE / name
    shutil.rmtree(tree, ignore_errors=True)
    ignore = shutil.ignore_patterns(".venv", "__pycache__", "*.pyc", ".*_cache")
    for part in ("shared", "services", "deploy/docker/worker"):
        shutil.copytree(ROOT / part, tree / part, ignore=ignore)
    for name in ("pyproject.toml", "uv.lock", ".dockerignore"):
        shutil.copy2(ROOT / name, tree / name)
    workflows = tree / "services/orders/src/orders/workflows.py"
    text = workflows.read_text()
    if change[0] not in text:
        raise Failed("OrderWorkflow.run's signature changed: update the e2e's _CHANGE")
    workflows.write_text(text.replace(change[0], change[0] + change[1], 1))
    return tree


def build_of(stack: Stack, workflow_id: str) -> str:
    """The build id an execution is pinned to (or ran its last task on)."""
    described = stack.temporal("workflow", "describe", "-w", workflow_id)
    info = described.get("workflowExecutionInfo", described)
    versioning = info.get("versioningInfo", {})
    version = versioning.get("deploymentVersion", {})
    return str(version.get("buildId", ""))


def make(stack: Stack, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    proc = run("make", *args, env=stack.env, check=False, timeout=timeout)
    output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    with (STATE / "compose.log").open("a") as log:
        log.write(f"\n$ make {shlex.join(args)}\n{output}")
    for line in output.splitlines():
        if "[deploy]" in line:
            say("   " + line)
    return proc


def check_deploy(stack: Stack, report: Report) -> None:
    """make deploy of a changed orders image: pinned orders finish on the old build."""
    pinned = [f"E2E-PIN-{i}-{RUN}" for i in range(3)]
    for order_id in pinned:
        stack.fleet("orders", "start", "orders", "OrderWorkflow", order(order_id, 1))
    for order_id in pinned:
        wait_for(
            f"order-{order_id} awaiting confirmation",
            lambda oid=order_id: (
                json.loads(  # type: ignore[misc]
                    stack.fleet("orders", "query", f"order-{oid}", "status")
                )["stage"]
                == "awaiting_confirmation"
            ),
            60,
            every=0.5,
        )
    old_build = build_of(stack, f"order-{pinned[0]}")
    before = {c["Id"] for c in stack.containers("orders") if c["State"]["Running"]}

    # The rollout's steps, shortened; no order arrives meanwhile, so no step waits for data.
    deployed = make(
        stack,
        "deploy",
        "QUEUE=orders",
        f"CONTEXT={changed_tree()}",
        "STEPS=50,100",
        "PAUSE=3s",
        "MIN_EXECUTIONS=0",
    )
    if deployed.returncode != 0:
        raise Failed(f"make deploy exited {deployed.returncode}: {deployed.stderr[-2000:]}")
    output = deployed.stdout + deployed.stderr
    report.check(
        "deploy: the rollout gated, ramped to 50%, made the build current and baked it",
        all(
            step in output
            for step in ("gate: passed", "step 1 (50%): passed", "bake (100%): passed")
        ),
        "gate, 50%, 100%, bake",
    )
    new = [
        c
        for c in stack.workers()
        if queue_of(c) == "orders" and service_of(c) != "orders" and c["State"]["Running"]
    ]
    if not new:
        raise Failed("make deploy started no new orders build")
    state = json.loads(stack.exec(new[0], "fleet", "deploy", "status", "orders", "--json"))
    builds = {b["build_id"]: b["status"] for b in state["builds"]}
    new_build = state["current_build_id"]
    report.check(
        "deploy: the changed build is current; the old one drains beside it",
        new_build != old_build
        and builds.get(old_build) == "draining"
        and all(c["State"]["Running"] for c in stack.containers("orders") if c["Id"] in before),
        f"{old_build} -> {new_build} ({len(new)} new container(s))",
    )
    check_targets(stack, report, "deploy")

    fresh = f"E2E-NEW-{RUN}"
    stack.exec(new[0], "fleet", "start", "orders", "OrderWorkflow", order(fresh, 1))
    for order_id in [*pinned, fresh]:
        workflow_id = f"order-{order_id}"
        wait_for(
            f"{workflow_id} awaiting confirmation",
            lambda wid=workflow_id: (
                json.loads(  # type: ignore[misc]
                    stack.exec(new[0], "fleet", "query", wid, "status")
                )["stage"]
                == "awaiting_confirmation"
            ),
            60,
            every=0.5,
        )
        stack.exec(new[0], "fleet", "signal", workflow_id, "confirm", '{"confirmed_by": "e2e"}')
    results = {
        oid: json.loads(stack.exec(new[0], "fleet", "result", f"order-{oid}", timeout=180))
        for oid in [*pinned, fresh]
    }
    ran_on = {oid: build_of(stack, f"order-{oid}") for oid in results}
    report.check(
        "deploy: orders in flight completed on the build that started them",
        all(str(results[o].get("tracking_number", "")).startswith("trk-") for o in pinned)
        and all(ran_on[o] == old_build for o in pinned),
        f"{len(pinned)} pinned orders on {old_build}",
    )
    report.check(
        "deploy: a new order ran on the new build",
        str(results[fresh].get("tracking_number", "")).startswith("trk-")
        and ran_on[fresh] == new_build,
        f"{fresh} on {ran_on[fresh]}",
    )
    failed = stack.temporal("workflow", "count", "--query", "ExecutionStatus = 'Failed'")
    task_failures = 0
    for oid in results:
        history = stack.temporal("workflow", "show", "-w", f"order-{oid}")
        events = history.get("events", history) if isinstance(history, dict) else history
        task_failures += sum(1 for e in events if "workflowTaskFailedEventAttributes" in e)
    report.check(
        "deploy: 0 failed workflows, 0 workflow task failures",
        int(failed.get("count", 0) or 0) == 0 and task_failures == 0,
        f"failed {failed.get('count', 0)}, workflow task failures {task_failures}",
    )

    retired = make(stack, "retire", "QUEUE=orders", "DRAIN_WAIT=120s")
    left = [c for c in stack.workers() if queue_of(c) == "orders" and c["State"]["Running"]]
    report.check(
        "deploy: the drained old build is retired, only the new one runs",
        retired.returncode == 0
        and not any(c["Id"] in before for c in left)
        and {service_of(c) for c in left} == {service_of(new[0])},
        f"{len(left)} orders container(s) of {new_build}",
    )
    check_targets(stack, report, "retired")


def check_rollback(stack: Stack, report: Report) -> None:
    """make deploy of a build that fails every order, with orders arriving: rolled back at its
    first step, its containers removed once drained, the running build current throughout."""
    # The current build's container (its compose service is orders-<build id> by now).
    via = next(c for c in stack.workers() if queue_of(c) == "orders" and c["State"]["Running"])
    status = json.loads(stack.exec(via, "fleet", "deploy", "status", "orders", "--json"))
    current = status["current_build_id"]
    stop = threading.Event()

    def orders_arrive() -> None:
        n = 0
        while not stop.is_set():
            with contextlib.suppress(Failed, subprocess.TimeoutExpired):
                new_order = order(f"E2E-RB-{n}-{RUN}", 1)
                stack.exec(via, "fleet", "start", "orders", "OrderWorkflow", new_order)
            n += 1
            stop.wait(0.5)

    arriving = threading.Thread(target=orders_arrive, daemon=True)
    arriving.start()
    try:
        deployed = make(
            stack,
            "deploy",
            "QUEUE=orders",
            f"CONTEXT={changed_tree('failing', _FAILING)}",
            "STEPS=50,100",
            "PAUSE=30s",
            "MIN_EXECUTIONS=3",
            "DRAIN_WAIT=120s",
        )
    finally:
        stop.set()
        arriving.join(timeout=60)
    output = re.sub(r"\x1b\[[0-9;]*m", "", deployed.stdout + deployed.stderr)
    verdict = next((line for line in output.splitlines() if "rolled back:" in line), "")
    report.check(
        "rollback: make deploy fails (its script exits 3), naming the step, the measure, its "
        "value and its limit",
        deployed.returncode != 0
        and "] Error 3" in output  # make reports its recipe's exit code
        and "step 1 (50%)" in verdict
        and "failure_ratio" in verdict,
        verdict.split("[deploy]")[-1].strip()[:160],
    )
    state = json.loads(stack.exec(via, "fleet", "deploy", "status", "orders", "--json"))
    report.check(
        "rollback: the running build stayed current, nothing ramps",
        state["current_build_id"] == current and state["ramping_build_id"] is None,
        f"current {state['current_build_id']}",
    )
    left = {
        service_of(c) for c in stack.workers() if queue_of(c) == "orders" and c["State"]["Running"]
    }
    builds = {b["build_id"]: b["status"] for b in state["builds"] if b["build_id"] != current}
    report.check(
        "rollback: the failing build's containers are removed once drained",
        left == {f"orders-{current}"} and "removing orders-" in output,
        f"running: {', '.join(sorted(left))}; other builds: {builds}",
    )


def _scheduled_type(events: list[dict[str, Any]], started: dict[str, Any]) -> str:
    scheduled_id = str(started.get("scheduledEventId"))
    for e in events:
        if str(e.get("eventId")) == scheduled_id:
            attrs = e.get("activityTaskScheduledEventAttributes", {})
            return str(attrs.get("activityType", {}).get("name", ""))
    return ""


# -- main -----------------------------------------------------------------------------------


def main() -> int:
    report = Report()
    engine: subprocess.Popen[bytes] | None = None
    stack: Stack | None = None
    keep = os.environ.get("E2E_KEEP") == "1"
    failure: str | None = None
    base = images.OFFICIAL_PYTHON_IMAGE
    sizes: list[tuple[str, float, float]] = []
    try:
        with report.phase("tools, engine and base image"):
            ensure_tools()
            engine = ensure_engine()
            base = base_image(report)
        env = {
            # Fixed for the run: the image labels must not change between two builds.
            "FLEET_VERSION": _git("describe", "--tags", "--always", "--dirty") or "dev",
            "FLEET_REVISION": _git("rev-parse", "HEAD") or "unknown",
            "COMPOSE_PROJECT_NAME": PROJECT,
            "FLEET_COMPOSE_FILES": COMPOSE_FILES,
            "FLEET_GRAFANA": "0",
            "FLEET_NAMESPACE": NAMESPACE,
            "PYTHON_IMAGE": base,
            **dict(zip(PUBLISHED_PORTS, map(str, free_ports(len(PUBLISHED_PORTS))), strict=True)),
            # This run's own keyring and codec token (scripts/fleet_compose.py writes them).
            "FLEET_SECRETS_DIR": str(STATE / "secrets"),
        }
        stack = Stack.from_env(env)
        with report.phase("build every image (make images)"):
            stack.script("down", "--volumes")  # leftovers of an interrupted run
            stack.script("images")
        with report.phase("start the stack and wait until healthy (make up)"):
            stack.script("up")
            ui = f"http://127.0.0.1:{env['FLEET_UI_PORT']}/"
            report.check("Temporal UI answers on 127.0.0.1", _status(ui) == 200, ui)
        with report.phase("a workflow on every queue"):
            queues = sorted({service_of(c) for c in stack.workers()})
            for queue in queues:
                if queue in WORKFLOWS:
                    WORKFLOWS[queue](stack, report)
                else:
                    say(f"   --  {queue}: no workflow to drive (add one to WORKFLOWS)")
            check_healthy(stack, report, "stack")
            check_images(stack, report)
            check_targets(stack, report, "stack")
            check_memory_limits(stack, report)
        with report.phase("payload encryption: the server stores ciphertext, the codec decodes"):
            check_encryption(stack, report)
        with report.phase("scale orders to 2"):
            replicas = check_scale(stack, report)
        with report.phase("kill an orders worker mid-workflow"):
            check_kill(stack, report, replicas)
            stack.script("scale", "orders", "2")
            check_healthy(stack, report, "recovered")
            check_targets(stack, report, "recovered")
        with report.phase("kill an orders worker mid-charge (shared PostgreSQL)"):
            check_charge_kill(stack, report)
            stack.script("scale", "orders", "2")
            check_healthy(stack, report, "recovered from the charge kill")
        with report.phase("crash a worker: the restart policy"):
            check_restart(stack, report)
        with report.phase("deploy a changed orders image beside the running one (make deploy)"):
            check_deploy(stack, report)
        with report.phase("a build that fails its orders is rolled back (make deploy)"):
            check_rollback(stack, report)
    except StackFailed as err:
        failure = str(err)
    except KeyboardInterrupt:
        failure = "interrupted"
    except Exception as err:
        failure = f"{type(err).__name__}: {err}"
    finally:
        if failure and stack is not None:
            _dump_logs(stack)
        if stack is not None and not keep:
            with report.phase("tear down (make down, volumes too)"):
                # A container of no service holds an endpoint on the stack's network, as the
                # engine at times still counts a removed one: down must still leave nothing.
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
                except Failed as err:
                    failure = failure or str(err)
                finally:
                    if holder:
                        ok("docker", "rm", "-f", holder.strip())
        if stack is not None and ok("docker", "info"):
            try:
                sizes = images.image_sizes(stack)
            except StackFailed as err:
                say(f"   no image sizes: {err}")
        if engine is not None and not keep:
            stop_engine(engine)

    total = time.monotonic() - report.started
    say("\n== durations")
    for name, seconds in report.phases:
        say(f"   {seconds:7.1f} s  {name}")
    say(f"   {total:7.1f} s  total")
    if sizes:
        say(f"\n== images (base {base})")
        for ref, size, added in sizes:
            say(f"   {ref:<36} {size:8.1f} MB   +{added:.1f} MB over the base")
    if failure:
        say(f"\nFAILED: {failure}")
        say(f"e2e: {len(report.passed)} passed, 1 failed")
        return 1
    say(f"\ne2e: {len(report.passed)} passed, 0 failed")
    return 0


def _git(*args: str) -> str:
    try:
        return run("git", *args, check=False).stdout.strip()
    except OSError:
        return ""


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


def _dump_logs(stack: Stack) -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    path = STATE / "compose-logs.txt"
    lines = []
    for c in stack.containers():
        logs = run("docker", "logs", "--tail", "200", c["Id"], check=False)
        lines.append(f"===== {c['Name']} ({health_of(c)})\n{logs.stdout}{logs.stderr}")
    path.write_text("\n".join(lines))
    say(f"   container logs: {path}")
    say("\n".join(line[-1500:] for line in lines[-3:]))


if __name__ == "__main__":
    sys.exit(main())
