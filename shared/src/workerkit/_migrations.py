"""Schema migrations of the queues that keep state, with Alembic.

A queue that keeps state names the package holding its Alembic revisions
(``Queue(migrations="orders.migrations")``); each queue has its own version table
(``alembic_version_<queue>``), so queues sharing one database migrate independently.
``fleet db migrate`` applies them: a compose one-shot service, a Helm pre-install and
pre-upgrade hook Job; never every replica at start-up. Concurrent runs are serialised by
a lock, and each run is one transaction: it applies everything or nothing.

A worker's readiness check (:func:`schema_states`) needs only each version table's row and
the ids of the installed revisions: it reads the one with SQLAlchemy and the others from the
revision files' source, so a worker never loads Alembic (about 8 MiB once used, SQLAlchemy's
dialects of other databases with it). Alembic reads them still when a file is more than plain
literals, so the answer is always the one Alembic gives.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy
from sqlalchemy import Connection
from workerkit._registry import Queue

if TYPE_CHECKING:  # Alembic is imported by `fleet db migrate`, never by a worker
    from alembic.config import Config
    from workerkit._database import Database

__all__ = ["SchemaState", "migrate", "schema_states"]

_ENVIRONMENT = str(resources.files("workerkit") / "_alembic")
MIGRATE_LOCK = "workerkit:migrate"


@dataclass(frozen=True)
class SchemaState:
    """Where one queue's schema is (``current``) and where its code needs it (``head``)."""

    queue: str
    current: str | None
    head: str | None
    # Whether this build's revisions include ``current`` (not: a newer build migrated it).
    known: bool = True

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def behind(self) -> bool:
        """The schema lacks revisions this build's code needs."""
        return not self.up_to_date and self.known


def _alembic_config(package: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", _ENVIRONMENT)
    cfg.set_main_option("version_locations", str(resources.files(package)))
    cfg.set_main_option("path_separator", "os")
    return cfg


def _config(queue: Queue, conn: Connection | None = None) -> Config:
    assert queue.migrations is not None
    cfg = _alembic_config(queue.migrations)
    cfg.attributes["connection"] = conn
    cfg.attributes["version_table"] = version_table(queue)
    return cfg


def version_table(queue: Queue) -> str:
    """The table where Alembic records the revision of ``queue``'s schema."""
    return f"alembic_version_{queue.name}"


def _current(conn: Connection, queue: Queue) -> str | None:
    """The revision in ``queue``'s version table (None: no table, or no row yet), read as
    Alembic's ``MigrationContext.get_current_revision`` reads it."""
    # Readiness asks every few seconds: the check's statements skip the engine's statement
    # cache (this connection only), so they never evict the services' own statements.
    conn.execution_options(compiled_cache=None)
    name = version_table(queue)
    if not conn.dialect.has_table(conn, name, None):  # as Alembic asks, without an Inspector
        return None
    versions = sqlalchemy.table(name, sqlalchemy.column("version_num"))
    rows = conn.execute(versions.select()).scalars().all()
    if len(rows) > 1:  # a branched schema: Alembic's own check, which says so
        return _alembic_current(conn, queue)
    return str(rows[0]) if rows else None


def _alembic_current(conn: Connection, queue: Queue) -> str | None:
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"version_table": version_table(queue)})
    return context.get_current_revision()


def schema_states(db: Database, queues: Sequence[Queue]) -> list[SchemaState]:
    """The schema state of every queue in ``queues`` that keeps state.

    Raises:
        DatabaseUnavailable: The database did not answer.
    """
    stateful = [q for q in queues if q.migrations]
    with db.transaction() as conn:
        return [_state(q, _current(conn, q)) for q in stateful]


@cache
def _revisions_of(package: str) -> tuple[str | None, frozenset[str]]:
    """The head revision of ``package`` and the ids of all its revisions.

    The installed revision files do not change while the process runs; readiness asks
    every few seconds, so they are read once.
    """
    found = _read_revisions(package)
    return found if found is not None else _alembic_revisions(package)


def _alembic_revisions(package: str) -> tuple[str | None, frozenset[str]]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config(package))
    return script.get_current_head(), frozenset(r.revision for r in script.walk_revisions())


# The files Alembic takes as revisions (alembic.script.base: not sourceless, not recursive).
_REVISION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")
_FIELDS = ("revision", "down_revision", "branch_labels", "depends_on")


def _read_revisions(package: str) -> tuple[str | None, frozenset[str]] | None:
    """What :func:`_alembic_revisions` finds, read from the files' source without running
    them; None when that takes Alembic: a value that is not a literal, branch labels or
    dependencies, or a history with another head than one, a cycle or a missing revision."""
    directory = Path(str(resources.files(package)))
    files = sorted(p for p in directory.iterdir() if p.is_file() and _REVISION_FILE.match(p.name))
    down: dict[str, tuple[str, ...]] = {}
    for path in files:
        fields = _literal_fields(path)
        if fields is None or fields.get("branch_labels") or fields.get("depends_on"):
            return None
        revision, parents = fields.get("revision"), fields.get("down_revision")
        if isinstance(parents, str):
            parents = (parents,)
        elif parents is None:
            parents = ()
        if (
            not isinstance(revision, str)
            or revision in down
            or not isinstance(parents, tuple | list)
            or not all(isinstance(p, str) for p in parents)
        ):
            return None
        down[revision] = tuple(parents)
    if not down:
        return None, frozenset()
    referenced = {parent for parents in down.values() for parent in parents}
    heads = [r for r in down if r not in referenced]
    if len(heads) != 1 or not referenced <= down.keys() or _has_cycle(down):
        return None
    return heads[0], frozenset(down)


def _literal_fields(path: Path) -> dict[str, object] | None:
    """The revision fields ``path`` assigns at its top level, each a literal; None if any is
    bound another way (computed, imported, assigned in a block) or the file does not parse."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):
        return None
    fields: dict[str, object] = {}
    assigned = 0
    for node in tree.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and target.id in _FIELDS and value is not None:
            try:
                fields[target.id] = ast.literal_eval(value)
            except ValueError:
                return None
            assigned += 1
    # Any other binding of these names (a loop, an import, a nested or tuple assignment)
    # is one that only running the file resolves.
    bindings = sum(_bound_name(node) in _FIELDS for node in ast.walk(tree))
    return fields if bindings == assigned else None


def _bound_name(node: ast.AST) -> str | None:
    """The name ``node`` binds, if it binds one."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return node.id
    if isinstance(node, ast.alias):
        return (node.asname or node.name).split(".")[0]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name
    if isinstance(node, ast.ExceptHandler):
        return node.name
    return None


def _has_cycle(down: dict[str, tuple[str, ...]]) -> bool:
    """Whether following down revisions from some revision comes back to it."""
    waiting = {r: len(parents) for r, parents in down.items()}
    children: dict[str, list[str]] = {}
    for revision, parents in down.items():
        for parent in parents:
            children.setdefault(parent, []).append(revision)
    ready = [r for r, count in waiting.items() if count == 0]
    seen = 0
    while ready:
        revision = ready.pop()
        seen += 1
        for child in children.get(revision, ()):
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return seen != len(down)


def _state(queue: Queue, current: str | None) -> SchemaState:
    assert queue.migrations is not None
    head, revisions = _revisions_of(queue.migrations)
    return SchemaState(queue.name, current, head, current is None or current in revisions)


def migrate(db: Database, queues: Sequence[Queue]) -> list[tuple[SchemaState, str | None]]:
    """Bring every stateful queue's schema to its head revision, in one transaction.

    Returns:
        For each queue, its state before and the revision it is at now.

    Raises:
        DatabaseUnavailable: The database did not answer.
    """
    from alembic import command

    done: list[tuple[SchemaState, str | None]] = []
    with db.transaction() as conn:
        db.lock(conn, MIGRATE_LOCK)  # a second `fleet db migrate` waits, then finds no work
        for queue in (q for q in queues if q.migrations):
            before = _state(queue, _current(conn, queue))
            # A schema this build does not know was migrated by a newer build: nothing to do
            # (an older build runs on it, migrations only add before they remove).
            if before.behind:
                command.upgrade(_config(queue, conn), "head")
            done.append((before, _current(conn, queue)))
    return done
