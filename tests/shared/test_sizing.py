"""Capacity planning (workerkit._sizing): measured figures and a rate in, a plan out."""

from __future__ import annotations

import json
import math
from importlib import resources

import pytest
from workerkit._exceptions import ConfigurationError
from workerkit._sizing import (
    Figures,
    PodSize,
    ServerLimits,
    load_figures,
    parse_cpu,
    parse_memory,
    parse_rate,
    plan,
)

# Round figures, so each expectation can be worked out by hand.
FIGURES = Figures(
    queue="demo",
    cpu_s_per_workflow=0.02,  # 50 workflows/s per core
    rss_mib_rest=90.0,
    rss_mib_load=100.0,
    frontend_requests_per_workflow=10.0,
    matching_requests_per_workflow=8.0,
    history_requests_per_workflow=12.0,
    workflow_tasks_per_workflow=4.0,
    activity_tasks_per_workflow=3.0,
    activity_polls_per_workflow=3.0,  # every activity polled: nothing added for eager ones
    activity_slot_s_per_workflow=0.1,
    history_persistence_per_workflow=30.0,
)

# The queues make capacity measures (a sample workflow each in bench/soak.py): a new queue
# has no figures until it gets one, and fleet size says so.
MEASURED = ("agent", "ingest", "notifications", "orders")


def test_cpu_sets_the_pods_at_the_cpu_target() -> None:
    # 100 wf/s x 0.02 s = 2 cores; a pod of 1 CPU at 70% serves 35 wf/s: 3 pods.
    p = plan(FIGURES, 100.0)
    assert p.cpu_cores == pytest.approx(2.0)
    assert p.pods_for_cpu == 3
    assert p.min_replicas == 3
    assert p.max_replicas == 6  # burst 2
    assert p.cpu_request_millicores == 1000
    # 100 MiB peak x 1.25 = 125, rounded up to 128; the pod's 512 is the limit.
    assert (p.memory_request_mib, p.memory_limit_mib) == (128, 512)


def test_exactly_full_pods_are_not_rounded_up() -> None:
    # 35 wf/s is exactly one pod at 70%.
    assert plan(FIGURES, 35.0).min_replicas == 1
    assert plan(FIGURES, 35.1).min_replicas == 2


def test_a_pod_above_one_cpu_counts_one_core() -> None:
    p = plan(FIGURES, 100.0, pod=PodSize(cpu=2.0))
    assert p.pods_for_cpu == 3  # not 2: one process uses about one core
    assert p.cpu_request_millicores == 2000
    assert any("one Python process" in note for note in p.notes)
    assert plan(FIGURES, 100.0, pod=PodSize(cpu=0.5)).pods_for_cpu == 6


def test_activity_slots_set_the_pods_when_activities_are_long() -> None:
    slow = Figures(**{**FIGURES.__dict__, "activity_slot_s_per_workflow": 10.0})
    # 20 wf/s x 10 s = 200 activities at once; 50 slots at 70% = 35 per pod: 6 pods.
    p = plan(slow, 20.0, activity_slots=50)
    assert p.pods_for_cpu == 1
    assert p.pods_for_slots == 6
    assert p.min_replicas == 6
    assert p.activity_slots_busy == pytest.approx(200 / 6)
    assert any("activity slots, not CPU" in note for note in p.notes)


def test_server_requests_and_the_first_limit_to_bind() -> None:
    p = plan(FIGURES, 100.0, server=ServerLimits(keda_interval_s=0))
    heartbeats = p.max_replicas / 60
    assert p.frontend_rps == pytest.approx(100 * 10 + heartbeats)
    assert p.matching_rps == pytest.approx(800)
    assert p.history_rps == pytest.approx(1200)
    limits = {limit.name: limit for limit in p.limits}
    # One task queue's matching load over min(4 partitions, 1 host) x matching.rps 1200.
    assert limits["matching.numTaskqueueReadPartitions"].binds_at == pytest.approx(150)
    # frontend.namespaceRPS: 2400 per frontend, 10 requests a workflow.
    assert limits["frontend.namespaceRPS"].binds_at == pytest.approx(240 - heartbeats / 10)
    assert limits["history.rps"].binds_at == pytest.approx(250)
    assert p.binding is not None and p.binding.name == "matching.numTaskqueueReadPartitions"
    assert limits["history.persistenceMaxQPS"].binds_at == pytest.approx(300)  # 9000 / 30
    assert limits["matching.persistenceMaxQPS"].binds_at is None  # no figure: no bound
    bound = [limit.binds_at for limit in p.limits if limit.binds_at is not None]
    assert bound == sorted(bound)
    assert p.limits[-1].name == "matching.persistenceMaxQPS"  # the unbound last
    assert not any("below the target" in note for note in p.notes)  # all above 100 wf/s


def test_more_queues_share_the_namespace_not_the_task_queue() -> None:
    server = ServerLimits(keda_interval_s=15, frontends=4, matching_hosts=4, history_hosts=8)
    one = {lim.name: lim for lim in plan(FIGURES, 10.0, server=server).limits}
    many = {lim.name: lim for lim in plan(FIGURES, 10.0, server=server, queues=100).limits}
    # A task queue's own limit does not change with the number of queues ...
    assert (
        many["matching.numTaskqueueReadPartitions"].binds_at
        == one["matching.numTaskqueueReadPartitions"].binds_at
        == pytest.approx(4 * 1200 / 8)
    )
    # ... the namespace's is shared: 9600 / 100 queues, less each queue's clock calls.
    clock = 1 / 15 + plan(FIGURES, 10.0, server=server, queues=100).max_replicas / 60
    assert many["frontend.namespaceRPS"].binds_at == pytest.approx((9600 / 100 - clock) / 10)
    assert many["frontend.namespaceRPS"].use == pytest.approx(100 * (10 * 10 + clock))


def test_the_target_above_a_limit_is_said() -> None:
    p = plan(FIGURES, 200.0)
    assert p.binding is not None and p.binding.binds_at is not None
    assert p.binding.binds_at < 200
    # One note names every limit below the target, the first to bind first.
    (note,) = [n for n in p.notes if n.startswith("below the target rate")]
    assert note.startswith("below the target rate, matching.numTaskqueueReadPartitions at 150/s, ")
    assert "history.rps" not in note  # binds at 250 wf/s, above the target


def test_a_declared_task_queue_rate_limit_binds() -> None:
    p = plan(FIGURES, 10.0, activity_task_rate=30.0)
    assert p.binding is not None
    assert p.binding.name == "task queue activity rate limit"
    assert p.binding.binds_at == pytest.approx(10.0)  # 30 tasks/s / 3 a workflow
    assert p.binding.use == pytest.approx(30.0)


def test_eager_activities_are_planned_as_polled() -> None:
    eager = Figures(**{**FIGURES.__dict__, "activity_polls_per_workflow": 0.0})
    p = plan(eager, 10.0, server=ServerLimits(keda_interval_s=0))
    assert p.frontend_rps == pytest.approx(10 * (10 + 3) + p.max_replicas / 60)
    assert p.matching_rps == pytest.approx(10 * (8 + 6))
    assert p.history_rps == pytest.approx(10 * (12 + 3))


def test_long_polls_bind_at_a_replica_count() -> None:
    # 1200 polls / (5 pollers + 2 of the operations worker) = 171.4 workers; maxReplicas is
    # twice the pods; a pod serves 35 wf/s.
    p = plan(FIGURES, 10.0)
    limit = next(lim for lim in p.limits if lim.name == "frontend.namespaceCount")
    # 171 workers fit: minReplicas 85 (maxReplicas 170) is the largest that fits.
    assert limit.binds_at == pytest.approx(85 * 35)
    assert limit.use == p.max_replicas * 7


def test_long_polls_count_the_replica_floors_of_many_queues() -> None:
    # 100 queues: 1200 / (100 x 7) = 1.7, so 1 worker each fits but maxReplicas is at least 2:
    # the limit binds at any rate, and the plan says so.
    p = plan(FIGURES, 10.0, queues=100)
    limit = next(lim for lim in p.limits if lim.name == "frontend.namespaceCount")
    assert limit.use == 100 * 2 * 7 > limit.capacity
    assert limit.binds_at == 0
    assert any("frontend.namespaceCount at 0/s" in note for note in p.notes)
    # 50 queues: 3 workers each fit, so minReplicas 1 (maxReplicas 2) at most: 35 wf/s.
    limit = next(
        lim
        for lim in plan(FIGURES, 10.0, queues=50).limits
        if lim.name == "frontend.namespaceCount"
    )
    assert limit.binds_at == pytest.approx(35)


def test_memory_below_the_measured_peak_raises_the_limit() -> None:
    p = plan(FIGURES, 10.0, pod=PodSize(memory_mib=64))
    assert p.memory_limit_mib == p.memory_request_mib == 128
    assert any("below the measured peak" in note for note in p.notes)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0.0},
        {"rate": -1.0},
        {"rate": math.nan},
        {"rate": math.inf},
        {"pod": PodSize(cpu=0)},
        {"pod": PodSize(cpu_target=1.5)},
        {"pod": PodSize(burst=0.5)},
        {"server": ServerLimits(partitions=0)},
        {"queues": 0},
    ],
)
def test_bad_input_is_refused(kwargs: dict[str, object]) -> None:
    rate = kwargs.pop("rate", 10.0)
    with pytest.raises(ConfigurationError):
        plan(FIGURES, rate, **kwargs)  # type: ignore[arg-type]


def test_rates_cpus_and_memory_parse() -> None:
    assert parse_rate("50/s") == 50
    assert parse_rate("3000/m") == 50
    assert parse_rate("3600/h") == 1
    assert parse_rate(" 2.5 ") == 2.5
    assert parse_cpu("500m") == 0.5
    assert parse_cpu("2") == 2
    assert parse_memory("512Mi") == 512
    assert parse_memory("1Gi") == 1024
    for bad in ("fast", "-5/s", "0", "nan", "inf/s", "5/d"):
        with pytest.raises(ValueError):
            parse_rate(bad)
    for bad in ("-1", "0m", "lots"):
        with pytest.raises(ValueError):
            parse_cpu(bad)
    with pytest.raises(ValueError):
        parse_memory("-512Mi")


def test_figures_from_a_document_check_their_numbers() -> None:
    document = {"queue": "demo", **{k: v for k, v in FIGURES.__dict__.items() if k != "queue"}}
    assert Figures.from_mapping({**document, "generated_by": "x"}) == FIGURES
    with pytest.raises(ConfigurationError, match="cpu_s_per_workflow must be a number"):
        Figures.from_mapping({**document, "cpu_s_per_workflow": "fast"})
    with pytest.raises(ConfigurationError, match="rss_mib_load missing"):
        Figures.from_mapping({k: v for k, v in document.items() if k != "rss_mib_load"})
    with pytest.raises(ConfigurationError, match="must be a number >= 0"):
        Figures.from_mapping({**document, "frontend_requests_per_workflow": -1})


def test_every_measured_queue_ships_its_figures() -> None:
    for name in MEASURED:
        figures = load_figures(name, name)
        assert figures.cpu_s_per_workflow > 0 and figures.rss_mib_load > 0
        assert figures.frontend_requests_per_workflow > 0
        assert figures.measured_on and figures.machine and figures.command
        raw = json.loads((resources.files(name) / "capacity.json").read_text(encoding="utf-8"))
        assert "generated_by" in raw


def test_a_queue_without_figures_is_one_clear_error() -> None:
    with pytest.raises(ConfigurationError, match=r"has no measured figures.*make capacity"):
        load_figures("workerkit", "demo")
