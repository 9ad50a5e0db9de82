"""Dashboards and alert rules, proven on a real Prometheus scraping real worker processes.

One scenario runs for the module: every registered queue's worker runs as its own
process, as the first build of the queue's Worker Deployment; orders gets a memory limit (a
cgroup of its own), one activity slot, slow packing, a late start, failing payments and an
order started by an earlier, incompatible build of its workflow, so that every alert's
condition really occurs; one worker is killed at the end. Then every dashboard query, every
variable query, every recording rule and every alert expression is evaluated through
Prometheus's HTTP API and must return data.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from workerkit import discover_queues
from workerkit._deployments import describe_deployment, set_current
from workerkit._rollout import RolloutRequest
from workerkit._rollout_activities import prom_measure

from orders.models import Address, Confirmation, LineItem, Order
from orders.workflows import OrderWorkflow

from support import WorkerProcess, free_port, http_get, run_cli, start_worker, stored

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
# The rules and dashboards the chart ships, their only copy.
FILES = REPO / "helm" / "temporal-fleet" / "files"
DASHBOARDS = sorted((FILES / "grafana" / "dashboards").glob("*.json"))
RULES = sorted((FILES / "prometheus" / "rules").glob("*.yml"))
# Every worker's build: the first of its queue's deployment, so it makes itself current.
BUILD_ID = "obs-build-1"
VERSIONED = {"TEMPORAL_WORKER_BUILD_ID": BUILD_ID}
# The build two queues roll out (same code): one rollout is aborted, one holds (1 h pauses).
SECOND_BUILD = "obs-build-2"
# Metrics Temporal's published SDK dashboard (temporalio/dashboards,
# sdk/temporal-core-sdks-otel.json) queries that any worker produces while it runs
# workflows with activities; the others in it count events (failed RPCs, empty polls,
# forced evictions) and appear under the same names when those happen.
SDK_DASHBOARD_METRICS = [
    "temporal_request",
    "temporal_request_latency_bucket",
    "temporal_long_request_latency_bucket",
    "temporal_workflow_completed",
    "temporal_workflow_failed",
    "temporal_workflow_endtoend_latency_bucket",
    "temporal_workflow_task_queue_poll_succeed",
    "temporal_workflow_task_schedule_to_start_latency_bucket",
    "temporal_workflow_task_execution_latency_bucket",
    "temporal_workflow_task_replay_latency_bucket",
    "temporal_activity_schedule_to_start_latency_count",
    "temporal_activity_schedule_to_start_latency_bucket",
    "temporal_activity_execution_latency_bucket",
    "temporal_activity_execution_failed",
    "temporal_worker_task_slots_available",
    "temporal_worker_task_slots_used",
    "temporal_sticky_cache_size",
    "temporal_sticky_cache_hit",
]

# slow: a worker process per queue, one killed, and a Prometheus scraping them.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="needs the prometheus binary (.ci/run installs it)",
    ),
]


@dataclass
class Prometheus:
    url: str

    def get(self, path: str, **params: str) -> Any:
        status, body = http_get(f"{self.url}{path}?{urllib.parse.urlencode(params)}", timeout=10)
        assert status == 200, f"{path} {params}: HTTP {status} {body[:300]}"
        payload = json.loads(body)
        assert payload["status"] == "success", payload
        return payload["data"]

    def series(self, expr: str, *, window: float = 120) -> list[dict[str, Any]]:
        """Evaluate ``expr`` over the last ``window`` seconds; return the series that have
        at least one finite value (a quantile of nothing is NaN: that is not data)."""
        now = time.time()
        data = self.get(
            "/api/v1/query_range", query=expr, start=str(now - window), end=str(now), step="2"
        )
        return [s for s in data["result"] if any(math.isfinite(float(v)) for _, v in s["values"])]

    def instant(self, expr: str) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/query", query=expr)["result"])


def start_prometheus(
    workdir: Path, targets: list[str], database_exporter: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Run Prometheus with the shipped config, scraping ``targets`` every second, and the
    database's exporter as the compose stack does (job postgres)."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(p) for p in RULES]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": targets}]
    config["scrape_configs"].append(
        {
            "job_name": "postgres",
            # The exporter waits about a second for a database that does not answer.
            "scrape_interval": "3s",
            "scrape_timeout": "3s",
            "static_configs": [{"targets": [database_exporter]}],
        }
    )
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={path}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "prometheus.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while http_get(f"{url}/-/ready")[0] != 200:
        assert proc.poll() is None, (workdir / "prometheus.log").read_text()
        assert time.monotonic() < deadline, "prometheus did not become ready"
        time.sleep(0.2)
    return proc, url


def an_order(token: str, units: int = 3) -> Order:
    return Order(
        order_id=f"obs-{uuid.uuid4().hex[:8]}",
        customer_id="cust-obs",
        items=[LineItem("sku-widget", units, 100)],
        shipping_address=Address("Obs", "1 Main St", "Springfield", "12345", "US"),
        payment_token=token,
        confirmation_timeout_seconds=60,
    )


def stored_starts(queue: str) -> list[tuple[str, list[Any]]]:
    """The workflow types and inputs of a queue's stored histories, to replay as new runs."""
    starts = []
    for path in stored(queue):
        attrs = json.loads(path.read_text())["events"][0]["workflowExecutionStartedEventAttributes"]
        payloads = attrs.get("input", {}).get("payloads", [])
        args = [json.loads(base64.b64decode(p["data"])) for p in payloads]
        starts.append((attrs["workflowType"]["name"], args))
    return starts


# OrderWorkflow as an earlier build ran it: it waited before reserving. A run it started does
# not replay on the current code, which reserves first: the orders workers fail its workflow
# tasks with NonDeterminismError, as after a deploy that changed workflow code incompatibly.
@workflow.defn(name="OrderWorkflow")
class EarlierOrderWorkflow:
    @workflow.run
    async def run(self, order: Order) -> None:
        await workflow.sleep(timedelta(hours=1))


async def start_on_an_earlier_build(client: Client) -> WorkflowHandle[Any, Any]:
    """Start an order on EarlierOrderWorkflow, run its first workflow task, stop that worker,
    and signal the run: its next workflow task waits for an orders worker, which fails it."""
    worker = Worker(
        client,
        task_queue="orders-v1",
        workflows=[EarlierOrderWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_cached_workflows=0,  # no sticky queue: the next task goes to every orders worker
    )
    async with worker:
        handle: WorkflowHandle[Any, Any] = await client.start_workflow(
            EarlierOrderWorkflow.run,
            an_order("tok_visa"),
            id=f"nde-obs-{uuid.uuid4().hex[:8]}",
            task_queue="orders-v1",
        )
        deadline = time.monotonic() + 20
        while not [
            e
            async for e in handle.fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
        ]:
            assert time.monotonic() < deadline, "the earlier build never ran its workflow task"
            await asyncio.sleep(0.1)
    await handle.signal(OrderWorkflow.confirm, Confirmation("obs"))
    return handle


async def workflow_task_failures_seen(prometheus: Prometheus) -> None:
    """Wait until Prometheus has seen the earlier build's run fail workflow tasks (an increase,
    not just a first sample): Temporal retries its task every workflow task timeout (10 s)."""
    expr = 'increase(temporal_workflow_task_execution_failed{task_queue="orders-v1"}[5m]) > 0'
    deadline = time.monotonic() + 30
    while not prometheus.instant(expr):
        assert time.monotonic() < deadline, f"no workflow task failure seen: {expr}"
        await asyncio.sleep(1)


async def wait_until_current(client: Client, queues: list[str]) -> None:
    """Wait for each queue's first build to make itself current (workers do once ready)."""
    deadline = time.monotonic() + 30
    for name in queues:
        while (state := await describe_deployment(client, name)) is None or (
            state.current_build_id != BUILD_ID
        ):
            assert time.monotonic() < deadline, f"{name}: build {BUILD_ID} never became current"
            await asyncio.sleep(0.2)


async def route_to_unversioned(client: Client, queues: list[str]) -> None:
    """Give each queue's new work back to unversioned workers, as later tests' workers are."""
    for name in queues:
        state = await describe_deployment(client, name)
        if state is not None and state.current_build_id:
            await set_current(client, state, "")


def fleet_as(address: str, build: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``fleet ARGS`` where ``build`` is installed (a rollout gates the code it runs beside)."""
    env = {"TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": "default"}
    return run_cli(*args, env={**env, "TEMPORAL_WORKER_BUILD_ID": build}, timeout=120)


async def start_rollout(address: str, queue: str) -> None:
    """Start a rollout of ``SECOND_BUILD`` of ``queue`` with hour-long steps."""
    done = await asyncio.to_thread(
        fleet_as, address, SECOND_BUILD, "deploy", "rollout", queue, "--pause", "1h"
    )
    assert done.returncode == 0, done.stdout + done.stderr


async def rollout_at_step_one(address: str, queue: str) -> None:
    """Start a rollout of ``queue`` and wait until it ramps (step 1)."""
    await start_rollout(address, queue)
    deadline = time.monotonic() + 60
    while True:
        status = await asyncio.to_thread(
            fleet_as, address, SECOND_BUILD, "deploy", "status", queue, "--json"
        )
        rollout = json.loads(status.stdout)["rollout"]
        if rollout and rollout["step"] >= 1:
            return
        assert time.monotonic() < deadline, f"{queue}: rollout never ramped: {rollout}"
        await asyncio.sleep(0.5)


async def end_rollout(address: str, queue: str) -> None:
    """Abort ``queue``'s rollout and wait until it ended (its ramp is cancelled)."""
    await asyncio.to_thread(fleet_as, address, SECOND_BUILD, "deploy", "abort", queue)
    deadline = time.monotonic() + 60
    while True:
        status = await asyncio.to_thread(
            fleet_as, address, SECOND_BUILD, "deploy", "status", queue, "--json"
        )
        rollout = json.loads(status.stdout)["rollout"]
        if rollout is None or rollout["outcome"]:
            return
        assert time.monotonic() < deadline, f"{queue}: rollout did not end: {rollout}"
        await asyncio.sleep(0.5)


@dataclass
class Scenario:
    prometheus: Prometheus
    workers: dict[str, WorkerProcess]
    killed: str


async def run_orders(client: Client, start_orders_worker: Callable[[str], WorkerProcess]) -> None:
    # A first orders worker makes Prometheus see the orders series, and stops. Counts
    # recorded by the next worker then arrive as a counter reset, which rate() counts in
    # full; a brand-new series would hide whatever its first scrape already holds.
    first = start_orders_worker("orders-first")
    first.wait_ready()
    await wait_until_current(client, ["orders"])
    # One order that ships and one that fails, so every series the scenario feeds exists.
    warm_ups = [an_order("tok_visa", units=1), an_order("tok_declined", units=1)]
    for order in warm_ups:
        handle = await client.start_workflow(
            OrderWorkflow.run, order, id=f"order-{order.order_id}", task_queue="orders-v1"
        )
        await handle.signal(OrderWorkflow.confirm, Confirmation("obs"))
        await asyncio.gather(handle.result(), return_exceptions=True)
    await asyncio.sleep(2.5)
    first.signal()
    assert await asyncio.to_thread(first.wait_exit) == 0

    # Started while no orders worker polls: their first workflow tasks wait > 2 s. Malformed
    # orders fail in that first task, declined ones fail an activity and compensate.
    orders = [an_order("tok_visa") for _ in range(4)]
    orders += [an_order("tok_declined") for _ in range(8)]
    orders += [replace(an_order("tok_visa"), items=[]) for _ in range(8)]
    handles: list[WorkflowHandle[Any, Any]] = [
        await client.start_workflow(
            OrderWorkflow.run, order, id=f"order-{order.order_id}", task_queue="orders-v1"
        )
        for order in orders
    ]
    await asyncio.sleep(2.5)
    start_orders_worker("orders")
    for handle in handles[:12]:
        await handle.signal(OrderWorkflow.confirm, Confirmation("obs"))
    results = await asyncio.gather(*(h.result() for h in handles), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 16, results


async def run_other_queues(client: Client) -> None:
    for name, queue in discover_queues().items():
        if name == "orders":
            continue
        for workflow_type, args in stored_starts(name):
            await client.start_workflow(
                workflow_type,
                args=args,
                id=f"obs-{name}-{uuid.uuid4().hex[:8]}",
                task_queue=queue.task_queue,
            )


def start_database_exporter(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Debian's prometheus-postgres-exporter, pointed at a database that is down (pg_up 0)."""
    binary = shutil.which("prometheus-postgres-exporter")
    assert binary, "apt-get install prometheus-postgres-exporter (.ci/run installs it)"
    address = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [binary, f"--web.listen-address={address}"],
        env={
            **os.environ,
            "DATA_SOURCE_NAME": f"postgresql://fleet:x@127.0.0.1:{free_port()}/fleet?sslmode=disable",
        },
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "postgres-exporter.log").open("w"),
    )
    deadline = time.monotonic() + 30
    while http_get(f"http://{address}/metrics")[0] != 200:
        assert proc.poll() is None, (workdir / "postgres-exporter.log").read_text()
        assert time.monotonic() < deadline, "the exporter did not start"
        time.sleep(0.1)
    return proc, address


@pytest.fixture(scope="module")
async def scenario(
    client: Client, temporal_address: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Scenario]:
    workdir = tmp_path_factory.mktemp("observability")
    workers: dict[str, WorkerProcess] = {}
    others = [name for name in discover_queues() if name != "orders"]
    orders_port = free_port()
    proc = None
    exporter = None
    earlier: WorkflowHandle[Any, Any] | None = None
    second_builds: list[WorkerProcess] = []
    # The rollouts, run by the scraped workers only (the second builds stay off the operations
    # queue), so their metrics are scraped: orders' ends at once (its replay gate refuses the
    # earlier build's run; the dashboards show orders), another queue's is aborted at its first
    # step, a third's is left holding.
    aborted, holding = [*others[1:], "", ""][:2]

    def start_orders_worker(name: str) -> WorkerProcess:
        # One activity slot and slow packing: activities queue up behind each other.
        workers["orders"] = start_worker(
            ["orders"],
            address=temporal_address,
            workdir=workdir,
            name=name,
            port=orders_port,
            env={
                **VERSIONED,
                "WORKER_MAX_CONCURRENT_ACTIVITIES": "1",
                "ORDERS_PACK_SECONDS_PER_ITEM": "0.6",
            },
            memory_limit=512 * 2**20,  # in a container of its own, as in compose and the chart
        )
        return workers["orders"]

    try:
        for name in others:
            workers[name] = start_worker(
                [name], address=temporal_address, workdir=workdir, name=name, env=VERSIONED
            )
        for worker in workers.values():
            worker.wait_ready()
        await wait_until_current(client, others)
        targets = [f"127.0.0.1:{w.port}" for w in workers.values()]
        exporter, exporter_address = start_database_exporter(workdir)
        proc, url = start_prometheus(
            workdir, [*targets, f"127.0.0.1:{orders_port}"], exporter_address
        )
        await run_other_queues(client)
        earlier = await start_on_an_earlier_build(client)
        await run_orders(client, start_orders_worker)
        await workflow_task_failures_seen(Prometheus(url))
        for name in ("orders", aborted, holding):
            if name:
                second_builds.append(
                    start_worker(
                        [name],
                        address=temporal_address,
                        workdir=workdir,
                        name=f"{name}-2",
                        env={
                            "TEMPORAL_WORKER_BUILD_ID": SECOND_BUILD,
                            "WORKER_FLEET_OPERATIONS": "false",
                        },
                    )
                )
        for worker in second_builds:
            worker.wait_ready()
        await start_rollout(temporal_address, "orders")
        await end_rollout(temporal_address, "orders")
        for name in (aborted, holding):
            if name:
                await rollout_at_step_one(temporal_address, name)
        if aborted:
            await end_rollout(temporal_address, aborted)
        killed = others[0] if others else "orders"
        await asyncio.sleep(3)  # a few scrapes of the finished workload
        workers[killed].kill()
        await asyncio.sleep(4)  # scrapes fail: up == 0, the killed worker's series go stale
        yield Scenario(Prometheus(url), workers, killed)
    finally:
        try:
            if earlier is not None:  # else it fails its workflow task on later tests' workers
                await earlier.terminate("observability scenario finished")
            if holding:
                await end_rollout(temporal_address, holding)
            await route_to_unversioned(client, [*others, "orders"])
        finally:
            for running in (proc, exporter):
                if running is not None:
                    running.terminate()
                    running.wait(timeout=30)
            for worker in [*workers.values(), *second_builds]:
                worker.kill()


def dashboard_targets() -> Iterator[tuple[str, str, str]]:
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                yield path.stem, f"{panel['title']} [{target['refId']}]", target["expr"]


def substitute(expr: str) -> str:
    """Do what Grafana does with the variables, for the default namespace and orders."""
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$namespace", "default")
        .replace("$queue", "orders-v1")
    )


TARGETS = list(dashboard_targets())


@pytest.mark.parametrize(
    ("dashboard", "panel", "expr"), TARGETS, ids=[f"{d}:{p}" for d, p, _ in TARGETS]
)
def test_every_dashboard_query_returns_data(
    scenario: Scenario, dashboard: str, panel: str, expr: str
) -> None:
    assert scenario.prometheus.series(substitute(expr)), f"no data for {expr}"


def test_dashboard_variables_list_every_queue(scenario: Scenario) -> None:
    for path in DASHBOARDS:
        for var in json.loads(path.read_text())["templating"]["list"]:
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", substitute(var["query"]))
            assert match, var["query"]
            values = scenario.prometheus.get(
                f"/api/v1/label/{match[2]}/values", **{"match[]": match[1]}
            )
            assert values, f"{path.name}: variable {var['name']} has no values"
            if var["name"] == "queue":
                assert {q.task_queue for q in discover_queues().values()} <= set(values)


def rules() -> Iterator[dict[str, Any]]:
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from group["rules"]


RULE_LIST = list(rules())


# Rules over KEDA's own metrics (keda_scaler_metrics_value): they exist only where KEDA runs
# and Prometheus scrapes its operator, so no worker here can produce them. Their promtool
# tests (deploy/prometheus/tests/) cover them instead.
KEDA_ONLY = {"queue_key:temporal_backlog:max"}
# Alerts whose condition takes an hour or more to come true, or a worker near its memory
# limit: evaluated with the thresholds lowered (the promtool tests hold the real ones).
LOWERED = {
    "FleetRolloutStuck": [("> 3600", "> 0")],
    "TemporalWorkerMemoryRising": [
        ("> 0.05", "> -Inf"),
        ("[30m]) > 0", "[30m]) > -Inf"),
        ("> 3600", "> 0"),
    ],
    "TemporalWorkerMemoryNearLimit": [("> 0.9", "> 0")],
}


@pytest.mark.parametrize("rule", RULE_LIST, ids=[r.get("record") or r["alert"] for r in RULE_LIST])
def test_every_rule_returns_data(scenario: Scenario, rule: dict[str, Any]) -> None:
    if rule.get("record") in KEDA_ONLY:
        assert "keda_scaler_metrics_value" in rule["expr"]
        pytest.skip("KEDA's metrics: covered by the promtool tests")
    expr = rule["expr"]
    for threshold, lowered in LOWERED.get(rule.get("alert", ""), []):
        assert threshold in expr
        expr = expr.replace(threshold, lowered)
    assert scenario.prometheus.series(expr, window=60), f"no data for {expr}"
    if "record" in rule:  # and Prometheus itself records it
        assert scenario.prometheus.series(rule["record"], window=60)


def test_queues_rollout_checks_measure_a_build(scenario: Scenario) -> None:
    """Every PromQL check a queue declares for its rollouts measures its workers' build."""
    checked = 0
    for queue in discover_queues().values():
        request = RolloutRequest(
            queue=queue.name,
            deployment=queue.name,
            task_queue=queue.task_queue,
            build_id=BUILD_ID,
            steps=[100],
            pause_seconds=120,
            max_failure_ratio=0.05,
            min_executions=0,
            max_extensions=0,
            insufficient_data="hold",
            prometheus_url=scenario.prometheus.url,
        )
        for check in queue.rollout.checks:
            measure = prom_measure(
                request, check.name, check.query, check.max, timedelta(seconds=120)
            )
            assert measure.detail == "PromQL", (queue.name, check.name, measure)
            assert measure.value >= 0, (queue.name, check.name, measure)
            checked += 1
    assert checked, "no queue declares a rollout check"


def test_alerts_name_the_right_queues(scenario: Scenario) -> None:
    prom = scenario.prometheus
    killed = discover_queues()[scenario.killed].task_queue
    expectations = {
        "TemporalWorkflowFailureRateHigh": ("task_queue", "orders-v1"),
        "TemporalActivityScheduleToStartHigh": ("task_queue", "orders-v1"),
        "TemporalWorkflowTaskScheduleToStartHigh": ("task_queue", "orders-v1"),
        "TemporalNoWorkerPolling": ("task_queue", killed),
        "TemporalWorkerDown": ("instance", f"127.0.0.1:{scenario.workers[scenario.killed].port}"),
    }
    by_name = {r["alert"]: r for r in RULE_LIST if "alert" in r}
    for alert, (label, value) in expectations.items():
        found = {s["metric"].get(label) for s in prom.instant(by_name[alert]["expr"])}
        assert value in found, f"{alert}: {label}={value} not in {found}"
    slots = prom.series(by_name["TemporalTaskSlotsExhausted"]["expr"], window=60)
    assert any(
        s["metric"]["task_queue"] == "orders-v1" and s["metric"]["worker_type"] == "ActivityWorker"
        for s in slots
    )
    # The run started by the earlier build: critical, naming the build that cannot replay it.
    expected = {
        "task_queue": "orders-v1",
        "build_id": BUILD_ID,
        "failure_reason": "NonDeterminismError",
        "severity": "critical",
    }
    failures = [s["metric"] for s in prom.instant(by_name["TemporalWorkflowTaskFailures"]["expr"])]
    assert any(expected.items() <= m.items() for m in failures), (expected, failures)


def test_failure_alert_goes_pending_or_firing(scenario: Scenario) -> None:
    deadline = time.monotonic() + 20
    while True:
        alerts = scenario.prometheus.get("/api/v1/alerts")["alerts"]
        states = {
            a["state"]
            for a in alerts
            if a["labels"]["alertname"] == "TemporalWorkflowFailureRateHigh"
            and a["labels"]["task_queue"] == "orders-v1"
        }
        if states & {"pending", "firing"}:
            return
        assert time.monotonic() < deadline, alerts
        time.sleep(1)


def test_temporal_sdk_dashboard_metrics_exist(scenario: Scenario) -> None:
    names = set(scenario.prometheus.get("/api/v1/label/__name__/values"))
    missing = [m for m in SDK_DASHBOARD_METRICS if m not in names]
    assert not missing, f"metrics Temporal's SDK dashboard queries are missing: {missing}"
    renamed = sorted(
        n
        for n in names
        if n.startswith("temporal_")
        and (n.endswith("_total") or "_seconds" in n or "_milliseconds" in n)
    )
    assert not renamed, f"not the SDK's default naming: {renamed}"
    namespaces = scenario.prometheus.get(
        "/api/v1/label/namespace/values", **{"match[]": "temporal_request"}
    )
    assert "default" in namespaces


async def test_orders_really_waited_for_a_worker(scenario: Scenario, client: Client) -> None:
    # Guards the scenario itself: orders really waited for a worker before starting.
    async for wf in client.list_workflows('WorkflowType="OrderWorkflow"', limit=50):
        if wf.id.startswith("order-obs-"):
            handle = client.get_workflow_handle(wf.id)
            events = [e async for e in handle.fetch_history_events()]
            started = next(
                e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
            )
            delay = started.event_time.ToDatetime() - events[0].event_time.ToDatetime()
            assert delay.total_seconds() >= 2
            return
    pytest.fail("no observability orders found")
