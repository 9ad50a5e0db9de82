"""The queue registry: one declaration per queue, discovered through package entry points.

A service registers its queue in its own ``pyproject.toml``::

    [project.entry-points."workerkit.queues"]
    orders = "orders.queue:QUEUE"

so installing the service is registering it: there is no central list to forget.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Literal, get_args

from temporalio import workflow
from temporalio.common import Priority, VersioningBehavior
from workerkit._exceptions import ConfigurationError, UnknownQueueError, UnknownWorkflowError
from workerkit._fairness import Fairness, RateLimits
from workerkit._rollout_policy import RolloutPolicy
from workerkit._schedules import Schedule
from workerkit._settings import Tuning
from workerkit.metrics import Metric, check_declared

__all__ = [
    "ENTRY_POINT_GROUP",
    "NAME_PATTERN",
    "SHAPES",
    "Queue",
    "QueueShape",
    "discover_queues",
    "get_queue",
]

ENTRY_POINT_GROUP = "workerkit.queues"
# Letters and digits only: the name is also a Python package, an image, a Kubernetes
# object and a DNS label, and "_" or "-" are each invalid in one of those.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,29}$")

ActivityList = Sequence[Callable[..., Any]]

# How a queue's work behaves, which decides how it may be scaled (see Queue.shape).
QueueShape = Literal["short", "long-activities", "batch"]
SHAPES: tuple[str, ...] = get_args(QueueShape)


@dataclass(frozen=True, kw_only=True)
class Queue:
    """Everything a worker needs to serve one task queue.

    Attributes:
        name: Queue name: a lower-case letter, then up to 29 lower-case letters or
            digits (e.g. ``orders``).
        version: Bumped when a change must not reach running workflows; the task
            queue becomes ``<name>-v<version>``.
        workflows: Workflow classes the worker registers.
        activities: Activity callables, or a zero-argument factory returning them
            (for activities bound to a resource opened when the worker starts: the
            methods of one instance, :func:`activities_of`).
        tuning: Concurrency defaults; ``WORKER_*`` variables override them.
        workflow_ids: For a workflow class, a function of its (typed) arguments that
            returns its deterministic workflow id, e.g. ``order-<order_id>``. Workflows
            without one get an id derived from a hash of their arguments.
        description: One line shown by ``fleet queues``.
        schedules: Recurring workflows the Temporal server starts on this queue;
            ``fleet schedules sync`` creates or updates them (see :class:`Schedule`).
        versioning: Each workflow type's Worker Versioning behavior: one for every type, or
            a mapping from workflow class to behavior. ``PINNED``: an execution stays on the
            build that started it (for types that finish within a deploy's lifetime);
            ``AUTO_UPGRADE``: it moves to the current build (for long-lived types, whose
            changes must then be guarded by ``workflow.patched()``). Declared here rather
            than in ``@workflow.defn`` so the classes also run on plain, unversioned
            workers (the server refuses a behavior from those); a ``@workflow.defn``
            declaration is honoured too. A type left without one is refused.
        interceptors: The queue's own SDK interceptors (client or worker ones), applied
            after the project's (tracing, logs, metrics) to its worker and its replayers.
        migrations: For a queue whose activities keep state in the database (see
            :func:`open_database`): the package holding its Alembic revisions, e.g.
            ``orders.migrations``. Its tables are named ``<queue>_…``; ``fleet db migrate``
            applies the revisions, and the chart refuses to scale such a queue without a
            shared database.
        histories: The package holding the queue's stored workflow histories, e.g.
            ``orders.histories``, shipped with its code: ``recorded/*.json``, which ``make
            histories`` records anew from the test scenarios, and ``frozen/*.json``, kept as
            they are to prove an older shape still replays. The replay tests and the replay
            gate of every deploy replay both.
        shape: How the queue's work behaves, which picks its safe scaling defaults (the Helm
            chart's autoscalers; `fleet queues --json` lists it):

            - ``"short"``: every activity and workflow task finishes within the worker's
              shutdown timeout (``WORKER_SHUTDOWN_TIMEOUT``), so a worker stopped by a
              scale-down drains whole: it scales on the backlog and may scale to zero once
              the backlog is empty;
            - ``"long-activities"``: activities may outlast the shutdown timeout (heartbeating
              ones, slow calls), and the backlog is empty while they run: in-flight work must
              never be cut, so it scales to zero only while no task slot is in use (a second
              autoscaler trigger on the slots in use), scales down one worker per drain
              time, and otherwise keeps at least one replica;
            - ``"batch"``: bursty fan-out (child workflows, long chunk activities): the same
              guards as long-activities, with longer scale-down windows, so capacity stays
              between the waves of a batch.

            The default, ``"long-activities"``, assumes nothing about how long the work takes:
            declare ``"short"`` only for a queue whose every task fits in the shutdown timeout.
        rollout: How ``fleet deploy rollout`` ramps a new build of this queue: its steps,
            pause, limits, gate workflow and PromQL checks (see :class:`RolloutPolicy`);
            the command line and the chart override them per rollout.
        metrics: The service's own metrics (see :mod:`workerkit.metrics`): each name starts
            with the queue's name; the queue's dashboard row shows them.
        fairness: How the queue's backlog is shared between tenants: the input field that
            names a workflow's tenant (its fairness key), priorities and per-tenant weights
            (see :class:`Fairness`). Every start the fleet makes sets them.
        rate_limits: The task queue's server-side rate limits (see :class:`RateLimits`),
            which ``fleet limits apply`` sets with the fairness weights.
    """

    name: str
    version: int = 1
    workflows: Sequence[type] = ()
    activities: ActivityList | Callable[[], ActivityList] = ()
    tuning: Tuning = field(default_factory=Tuning)
    workflow_ids: Mapping[type, Callable[..., str]] = field(default_factory=dict)
    description: str = ""
    schedules: Sequence[Schedule] = ()
    versioning: VersioningBehavior | Mapping[type, VersioningBehavior] | None = None
    migrations: str | None = None
    histories: str | None = None
    interceptors: Sequence[Any] = ()
    shape: QueueShape = "long-activities"
    rollout: RolloutPolicy = field(default_factory=RolloutPolicy)
    metrics: Sequence[Metric] = ()
    fairness: Fairness = field(default_factory=Fairness)
    rate_limits: RateLimits = field(default_factory=RateLimits)

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ConfigurationError(
                f"queue name {self.name!r} must be a lower-case letter followed by up to 29 "
                "lower-case letters or digits"
            )
        if self.version < 1:
            raise ConfigurationError(f"queue {self.name!r}: version must be >= 1")
        if not self.workflows and not self.activities:
            raise ConfigurationError(f"queue {self.name!r} declares no workflows or activities")
        if self.shape not in SHAPES:
            raise ConfigurationError(
                f"queue {self.name!r}: shape {self.shape!r} is not one of {', '.join(SHAPES)}"
            )
        declared = dict(self.versioning) if isinstance(self.versioning, Mapping) else {}
        if self.versioning == VersioningBehavior.UNSPECIFIED or any(
            b == VersioningBehavior.UNSPECIFIED for b in declared.values()
        ):
            raise ConfigurationError(
                f"queue {self.name!r}: versioning must be PINNED or AUTO_UPGRADE (or left unset)"
            )
        strays = [c.__name__ for c in declared if c not in self.workflows]
        if strays:
            raise ConfigurationError(
                f"queue {self.name!r}: versioning names {', '.join(strays)}, which the queue "
                "does not register"
            )
        for type_name, behavior in self.versioning_behaviors().items():
            if behavior == VersioningBehavior.UNSPECIFIED:
                raise ConfigurationError(
                    f"queue {self.name!r}: workflow {type_name} has no versioning behavior; "
                    "declare it in the queue's versioning= (PINNED or AUTO_UPGRADE)"
                )
        for cls in self.workflows:
            for what, fn in _workflow_callables(cls):
                problem = optional_parameters(fn)
                if problem:
                    raise ConfigurationError(f"queue {self.name!r}: {what} {problem}")
        self.fairness.check(self.name, self.workflows, self._single_arg_types())
        self.rate_limits.check(self.name)
        problem = check_declared(self.name, self.metrics)
        if problem is not None:
            raise ConfigurationError(f"queue {self.name!r}: {problem}")
        gate = self.rollout.gate_workflow
        if gate is not None and gate not in self.workflow_types():
            raise ConfigurationError(
                f"queue {self.name!r}: rollout gate workflow {gate!r} is not one of its "
                "workflow types"
            )
        seen: set[str] = set()
        for schedule in self.schedules:
            if schedule.id in seen:
                raise ConfigurationError(f"queue {self.name!r}: schedule {schedule.id!r} twice")
            seen.add(schedule.id)
            if schedule.workflow not in self.workflows:
                raise ConfigurationError(
                    f"queue {self.name!r}: schedule {schedule.id!r} starts "
                    f"{schedule.workflow.__name__}, which the queue does not register"
                )

    @property
    def task_queue(self) -> str:
        """The Temporal task queue this queue's workers poll."""
        return f"{self.name}-v{self.version}"

    def workflow_types(self) -> dict[str, type]:
        """Map each registered workflow type name to its class."""
        types: dict[str, type] = {}
        for cls in self.workflows:
            defn = workflow._Definition.must_from_class(cls)
            if defn.name is not None:
                types[defn.name] = cls
        return types

    def versioning_behaviors(self) -> dict[str, VersioningBehavior]:
        """Map each workflow type name to the versioning behavior its executions get."""
        by_class = dict(self.versioning) if isinstance(self.versioning, Mapping) else {}
        default = self.versioning if isinstance(self.versioning, VersioningBehavior) else None
        behaviors: dict[str, VersioningBehavior] = {}
        for name, cls in self.workflow_types().items():
            declared = (
                by_class.get(cls) or workflow._Definition.must_from_class(cls).versioning_behavior
            )
            if declared in (None, VersioningBehavior.UNSPECIFIED):
                declared = default or VersioningBehavior.UNSPECIFIED
            behaviors[name] = declared
        return behaviors

    def code_packages(self) -> tuple[str, ...]:
        """The top-level packages whose code this queue's workers run (for the build id)."""
        modules = {c.__module__ for c in self.workflows}
        modules |= {getattr(a, "__module__", "") or "" for a in self._activity_callables()}
        packages = {m.split(".")[0] for m in modules if m and m != "__main__"}
        return tuple(sorted(packages | {"workerkit"}))

    def _activity_callables(self) -> list[Callable[..., Any]]:
        # A factory opens resources: its module names the package without calling it.
        acts = self.activities
        return [acts] if callable(acts) else list(acts)

    def workflow_class(self, workflow_type: str) -> type:
        """Return the class registered under ``workflow_type``.

        Raises:
            UnknownWorkflowError: The queue registers no such workflow type.
        """
        types = self.workflow_types()
        if workflow_type not in types:
            raise UnknownWorkflowError(self.name, workflow_type, sorted(types))
        return types[workflow_type]

    def workflow_run_method(self, workflow_type: str) -> Callable[..., Any]:
        """Return the ``@workflow.run`` method, so a client's handle knows the result type.

        Raises:
            UnknownWorkflowError: The queue registers no such workflow type.
        """
        defn = workflow._Definition.must_from_class(self.workflow_class(workflow_type))
        return defn.run_fn

    def workflow_arg_types(self, workflow_type: str) -> list[type] | None:
        """Return the run method's parameter types, or ``None`` if it is not fully typed.

        Raises:
            UnknownWorkflowError: The queue registers no such workflow type.
        """
        defn = workflow._Definition.must_from_class(self.workflow_class(workflow_type))
        return None if defn.arg_types is None else list(defn.arg_types)

    def priority(self, workflow_type: str, args: Sequence[Any]) -> Priority:
        """The priority (fairness key, priority key) of starting ``workflow_type`` with ``args``.

        Raises:
            UnknownWorkflowError: The queue registers no such workflow type.
        """
        return self.fairness.priority_for(self.workflow_class(workflow_type), args)

    def limits_activities(self) -> bool:
        """Whether the queue declares an activity rate limit, which every activity must then
        pass through the task queue to honour (none may be started eagerly).

        A fairness key alone needs no such thing: an activity is started eagerly only by the
        worker that just ran its workflow task, with a slot free, and workflow tasks are
        themselves dispatched fairly; under contention, with no slot free, every activity
        goes through the task queue anyway.
        """
        limits = self.rate_limits
        return limits.activity_tasks is not None or limits.activity_tasks_per_key is not None

    def _single_arg_types(self) -> dict[type, Any]:
        # The input type of each workflow whose run method takes exactly one typed argument.
        found: dict[type, Any] = {}
        for cls in self.workflows:
            defn = workflow._Definition.from_class(cls)
            if defn is not None and defn.arg_types is not None and len(defn.arg_types) == 1:
                found[cls] = defn.arg_types[0]
        return found

    def workflow_id(self, workflow_type: str, args: Sequence[Any]) -> str:
        """Return the deterministic id for starting ``workflow_type`` with ``args``."""
        make_id = self.workflow_ids.get(self.workflow_class(workflow_type))
        if make_id is not None:
            return make_id(*args)
        canonical = json.dumps(
            [_plain(a) for a in args], sort_keys=True, separators=(",", ":"), default=str
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
        return f"{self.name}-{workflow_type}-{digest}"

    def build_activities(self) -> list[Callable[..., Any]]:
        """Return the activity callables, calling the factory if one was given."""
        acts = self.activities
        if callable(acts):
            return list(acts())
        return list(acts)


def optional_parameters(fn: Callable[..., Any]) -> str | None:
    """What makes ``fn``'s argument count not fixed (a default, ``*args``), or ``None``.

    The strict converter (``_strict``) refuses a call whose argument count differs from the
    parameters', before any code runs; a parameter with a default would make a shorter call
    valid, so workflows, their handlers and activities take required parameters only
    (optional fields belong in the input dataclass).
    """
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    loose = [
        p.name
        for p in params
        if p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if not loose:
        return None
    return (
        f"has parameters whose count is not fixed ({', '.join(loose)}): every call must pass "
        "each parameter; put optional fields in the input dataclass"
    )


def _workflow_callables(cls: type) -> list[tuple[str, Callable[..., Any]]]:
    defn = workflow._Definition.from_class(cls)
    if defn is None or defn.name is None:  # not a workflow, or the dynamic one
        return []
    name = cls.__name__
    found: list[tuple[str, Callable[..., Any]]] = [(f"{name}.run", defn.run_fn)]
    if hasattr(cls.__init__, "__temporal_workflow_init"):  # type: ignore[misc]
        found.append((f"{name}.__init__", cls.__init__))  # type: ignore[misc]
    for kind, handlers in (
        ("signal", defn.signals),
        ("query", defn.queries),
        ("update", defn.updates),
    ):
        found += [(f"{name} {kind} {n}", h.fn) for n, h in handlers.items() if n is not None]
    return found


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


@cache
def discover_queues() -> dict[str, Queue]:
    """Load every queue that an installed package registers, by name.

    Raises:
        ConfigurationError: A registration does not load, is not a :class:`Queue`,
            or its entry-point name differs from the queue's name.
    """
    queues: dict[str, Queue] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            queue = ep.load()
        except Exception as err:
            raise ConfigurationError(
                f"queue {ep.name!r} ({ep.value}) failed to load: {type(err).__name__}: {err}"
            ) from err
        if not isinstance(queue, Queue):
            raise ConfigurationError(
                f"entry point {ep.name!r} ({ep.value}) is a {type(queue).__name__}, not a Queue"
            )
        if queue.name != ep.name:
            raise ConfigurationError(
                f"entry point {ep.name!r} ({ep.value}) declares queue {queue.name!r}; "
                "the two names must match"
            )
        queues[queue.name] = queue
    return dict(sorted(queues.items()))


def get_queue(name: str) -> Queue:
    """Return the registered queue called ``name``.

    Raises:
        UnknownQueueError: No installed service registers that name.
    """
    queues = discover_queues()
    if name not in queues:
        raise UnknownQueueError(name, list(queues))
    return queues[name]
