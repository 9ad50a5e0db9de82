"""Schema migrations of the queues that keep state, with Alembic.

A queue that keeps state names the package holding its Alembic revisions
(``Queue(migrations="orders.migrations")``); each queue has its own version table
(``alembic_version_<queue>``), so queues sharing one database migrate independently.
``fleet db migrate`` applies them: a compose one-shot service, a Helm pre-install and
pre-upgrade hook Job; never every replica at start-up. Concurrent runs are serialised by
a lock, and each run is one transaction: it applies everything or nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from workerkit._registry import Queue

if TYPE_CHECKING:  # Alembic is imported when a schema is first looked at, not at start-up
    from alembic.config import Config
    from sqlalchemy import Connection
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
    from alembic.runtime.migration import MigrationContext

    # Alembic describes the version table anew for every context: a new Table object, which
    # the engine's statement cache keys anew on every check (readiness asks every few
    # seconds), filling it with dead entries that hold the Table and evict the services'
    # own statements. The check's statements skip the cache (this connection only).
    conn.execution_options(compiled_cache=None)
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
    # The installed revision files do not change while the process runs; readiness asks
    # every few seconds, so they are read once.
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config(package))
    return script.get_current_head(), frozenset(r.revision for r in script.walk_revisions())


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
