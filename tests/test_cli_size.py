"""``fleet size`` as a user runs it: the packaged figures of an installed queue, no server."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from support import run_cli

# The queues make capacity measures (a sample workflow each in bench/soak.py): a new queue
# has no figures until it gets one, and fleet size says so.
MEASURED = ("agent", "ingest", "notifications", "orders")


def test_size_orders_at_50_per_second() -> None:
    done = run_cli("size", "orders", "--rate", "50/s", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    figures = json.loads((resources.files("orders") / "capacity.json").read_text("utf-8"))
    assert plan["queue"] == "orders" and plan["rate"] == 50
    # The CPU the rate needs, from the measured figure, and pods of 1 CPU at 70%.
    cores = 50 * figures["cpu_s_per_workflow"]
    assert plan["cpu_cores"] == pytest.approx(cores, abs=1e-3)
    assert plan["replicas"]["min"] >= -(-cores // 0.7)
    assert plan["replicas"]["max"] >= 2 * plan["replicas"]["min"]
    assert plan["resources"]["requests"]["cpu"] == "1000m"
    memory = int(plan["resources"]["requests"]["memory"].removesuffix("Mi"))
    assert memory >= figures["rss_mib_load"] * 1.25
    # orders declares 50 activity slots and a 500 tasks/s activity rate limit.
    assert plan["worker"]["activity_slots"] == 50
    limits = {limit["name"]: limit for limit in plan["limits"]}
    assert limits["task queue activity rate limit"]["capacity"] == 500
    assert {"frontend.namespaceRPS", "matching.numTaskqueueReadPartitions"} <= set(limits)
    # The binding limit is the one that binds at the lowest rate.
    rates = [limit["binds_at"] for limit in plan["limits"] if limit["binds_at"] is not None]
    assert limits[plan["binding"]]["binds_at"] == min(rates)

    text = run_cli("size", "orders", "--rate", "50/s")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("orders at 50 workflows/s\n")
    assert "frontend.namespaceRPS" in text.stdout and "replicas      min" in text.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["orders", "--rate", "fast"], "--rate must be workflows per second above 0"),
        (["orders", "--rate=-5/s"], "--rate must be workflows per second above 0"),
        (["orders", "--rate", "-5"], "--rate must be workflows per second above 0"),
        (["orders", "--rate", "0"], "--rate must be workflows per second above 0"),
        (["orders", "--rate", "5", "--pod-cpu", "lots"], "--pod-cpu must be a CPU amount"),
        (["orders", "--rate", "5", "--pod-memory=-1Gi"], "--pod-memory must be a memory"),
        (["orders", "--rate", "5", "--cpu-target", "2"], "--cpu-target must be a number from"),
        (["orders", "--rate", "5", "--queues", "1.5"], "--queues must be a whole number"),
        (["payments", "--rate", "5"], "unknown queue 'payments'; known queues: "),
        (["orders", "--rate", "5", "--history-db-qps", "0"], "--history-db-qps must be a number"),
        (
            ["orders", "--rate", "5", "--namespace-polls", "2.5"],
            "--namespace-polls must be a whole",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = run_cli("size", *args)
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert done.stdout == ""


def test_every_limit_it_names_can_be_raised_from_the_command_line() -> None:
    # The note says "raise them on the server": each limit the plan lists has its option.
    given = ["--namespace-polls", "5000", "--history-db-qps", "20000", "--matching-db-qps", "9000"]
    done = run_cli("size", "orders", "--rate", "10/s", "--json", *given)
    limits = {limit["name"]: limit["capacity"] for limit in json.loads(done.stdout)["limits"]}
    assert limits["frontend.namespaceCount"] == 5000
    assert limits["history.persistenceMaxQPS"] == 20000
    assert limits["matching.persistenceMaxQPS"] == 9000
    done = run_cli("size", "orders", "--rate", "10/s", "--json", "--global-namespace-rps", "9999")
    limits = {limit["name"]: limit["capacity"] for limit in json.loads(done.stdout)["limits"]}
    assert limits["frontend.globalNamespaceRPS"] == 9999


def test_every_measured_queue_can_be_sized() -> None:
    for name in MEASURED:
        done = run_cli("size", name, "--rate", "10/s", "--json")
        assert done.returncode == 0, (name, done.stderr)
        assert json.loads(done.stdout)["replicas"]["min"] >= 1
