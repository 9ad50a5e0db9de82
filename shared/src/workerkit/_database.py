"""The database behind the services' activities: PostgreSQL shared, or SQLite embedded.

``DATABASE_URL`` chooses it. ``postgresql://…`` is the system of record for compose and
Kubernetes: every replica of every queue shares it, so an idempotency key written by one
pod is seen by the retry that runs on another. Without it, a ``sqlite:///`` file in
``WORKER_STATE_DIR`` serves ``make dev`` and quick tests with nothing to install. The
services run the same SQL on both (SQLAlchemy Core, the ``psycopg`` 3 driver).

Transactions are short and serialised where it matters: on SQLite every transaction
takes the write lock at ``BEGIN`` (``BEGIN IMMEDIATE``), on PostgreSQL :meth:`Database.lock`
takes a transaction-scoped advisory lock on a key, so a read-check-write is atomic across
worker processes on both.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import sqlalchemy
import sqlalchemy.exc
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import URL, make_url
from temporalio.exceptions import ApplicationError
from workerkit._exceptions import SettingError, WorkerkitError
from workerkit._settings import state_path
from workerkit._slots import current_activity_slots

__all__ = [
    "DATABASE_ERROR",
    "DATABASE_POOL_SIZE_VARIABLE",
    "DATABASE_UNAVAILABLE",
    "DATABASE_URL_VARIABLE",
    "Database",
    "DatabaseUnavailable",
    "database_call",
    "database_errors",
    "database_url",
    "open_database",
]

DATABASE_URL_VARIABLE = "DATABASE_URL"
DATABASE_POOL_SIZE_VARIABLE = "DATABASE_POOL_SIZE"
# The embedded default: one file for every queue of the process, in WORKER_STATE_DIR.
DEFAULT_SQLITE_FILE = "fleet.sqlite3"
# Error types of the ApplicationErrors that database_call raises (both retryable).
DATABASE_UNAVAILABLE = "DatabaseUnavailable"
DATABASE_ERROR = "DatabaseError"

# A pool per worker process, sized from its activity slots but capped: the chart runs up to
# maxReplicas pods per queue, and pods times pool must stay below the server's max_connections
# (PostgreSQL's default is 100). Activities wait for a connection rather than open more.
DEFAULT_POOL_CAP = 4
POOL_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5
# Short transactions, enforced by the server: a statement or a lock wait that takes longer
# fails (retryably) instead of holding rows; a session idle inside a transaction is cut off.
STATEMENT_TIMEOUT_MS = 15_000
LOCK_TIMEOUT_MS = 10_000
IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000
SQLITE_BUSY_TIMEOUT_S = 30.0

_SCHEMES = {
    "sqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
}
_P = ParamSpec("_P")
_R = TypeVar("_R")


class DatabaseUnavailable(WorkerkitError):
    """The database did not answer: down, unreachable, refusing connections, or timed out."""


def database_url(environ: Mapping[str, str] | None = None) -> URL:
    """The database ``DATABASE_URL`` names, or the embedded SQLite file by default.

    Raises:
        SettingError: The URL cannot be parsed or names another kind of database.
    """
    env = os.environ if environ is None else environ
    raw = env.get(DATABASE_URL_VARIABLE, "").strip()
    if not raw:
        return make_url(f"sqlite:///{state_path(DEFAULT_SQLITE_FILE, env)}")
    accepted = "postgresql://USER:PASSWORD@HOST:PORT/NAME or sqlite:///PATH"
    try:
        url = make_url(raw)
    except sqlalchemy.exc.ArgumentError:
        raise SettingError(DATABASE_URL_VARIABLE, _redacted(raw), accepted) from None
    scheme = url.drivername.split("+", 1)[0]
    if scheme not in _SCHEMES:
        raise SettingError(DATABASE_URL_VARIABLE, _redacted(raw), accepted)
    if scheme == "sqlite" and not url.database:
        raise SettingError(DATABASE_URL_VARIABLE, raw, f"{accepted} (a file, not in memory)")
    if scheme != "sqlite" and not url.host:
        raise SettingError(DATABASE_URL_VARIABLE, _redacted(raw), f"{accepted} (with a host)")
    return url.set(drivername=_SCHEMES[scheme])


def _redacted(raw: str) -> str:
    # The value is echoed in an error message: never with the password in it.
    try:
        return make_url(raw).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return "<unparseable>"


def _pool_size(environ: Mapping[str, str]) -> int:
    raw = environ.get(DATABASE_POOL_SIZE_VARIABLE, "").strip()
    if raw:
        try:
            size = int(raw)
            if not 1 <= size <= 100:
                raise ValueError(raw)
        except ValueError:
            raise SettingError(
                DATABASE_POOL_SIZE_VARIABLE, raw, "an integer from 1 to 100"
            ) from None
        return size
    slots = current_activity_slots()
    return min(slots, DEFAULT_POOL_CAP) if slots else DEFAULT_POOL_CAP


class Database:
    """A connection pool to one database, and the transactions the services run on it.

    Args:
        url: A URL from :func:`database_url`.
        pool_size: Connections kept per process (PostgreSQL); activities beyond it wait.
        application_name: How the connections name themselves to PostgreSQL
            (``pg_stat_activity``), e.g. the queue.
    """

    def __init__(self, url: URL, *, pool_size: int, application_name: str = "fleet") -> None:
        self.url = url
        self.pool_size = pool_size
        self.engine: Engine
        if url.get_backend_name() == "sqlite":
            self.engine = _sqlite_engine(url)
        else:
            self.engine = sqlalchemy.create_engine(
                url,
                pool_size=pool_size,
                max_overflow=0,
                pool_timeout=POOL_TIMEOUT_S,
                # A connection the server dropped (restart, failover) is replaced, not used.
                pool_pre_ping=True,
                pool_recycle=1800,
                # Failure messages never carry the bound values (customer data).
                hide_parameters=True,
                connect_args={
                    "connect_timeout": CONNECT_TIMEOUT_S,
                    "application_name": application_name[:63],
                    "options": (
                        f"-c statement_timeout={STATEMENT_TIMEOUT_MS} "
                        f"-c lock_timeout={LOCK_TIMEOUT_MS} "
                        f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"
                    ),
                },
            )

    @property
    def dialect(self) -> str:
        """``postgresql`` or ``sqlite``."""
        return self.url.get_backend_name()

    @property
    def display_url(self) -> str:
        """The URL without its password, for logs and error messages."""
        return self.url.set(drivername=self.dialect).render_as_string(hide_password=True)

    @contextmanager
    def transaction(self, *, lock: str | None = None) -> Iterator[Connection]:
        """Yield a connection inside one transaction: committed, or rolled back on error.

        Args:
            lock: Take :meth:`lock` on this key first (e.g. ``orders:<order_id>``).

        Raises:
            DatabaseUnavailable: The database could not be reached or timed out.
        """
        try:
            with self.engine.begin() as conn:
                if lock is not None:
                    self.lock(conn, lock)
                yield conn
        except _UNAVAILABLE as err:
            if not _unavailable(err):
                raise
            raise DatabaseUnavailable(
                f"database unavailable ({self.display_url}): {_first_line(err)}"
            ) from err

    def lock(self, conn: Connection, key: str) -> None:
        """Serialise the rest of this transaction with every other one that locks ``key``.

        On PostgreSQL a transaction-scoped advisory lock, released at commit or rollback;
        on SQLite a no-op, as every transaction already holds the write lock.
        """
        if self.dialect == "postgresql":
            digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:k)"),
                {"k": int.from_bytes(digest, "big", signed=True)},
            )

    def lock_table(self, conn: Connection, table: str) -> None:
        """Wait for this table's uncommitted inserts, and hold new ones until this commits.

        For a cursor over an autoincrement column: on PostgreSQL, numbers are handed out
        before their rows commit, so a reader could pass one that commits later. On SQLite
        a no-op, as every transaction already holds the write lock.
        """
        if self.dialect == "postgresql":
            conn.execute(text(f'LOCK TABLE "{table}" IN SHARE MODE'))

    def ping(self) -> None:
        """Run one trivial query.

        Raises:
            DatabaseUnavailable: The database did not answer.
        """
        with self.transaction() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _sqlite_engine(url: URL) -> Engine:
    path = Path(url.database or "")
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sqlalchemy.create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}, hide_parameters=True
    )

    # The driver's own transaction handling is switched off so that BEGIN is ours: BEGIN
    # IMMEDIATE takes the write lock at once, making each transaction's reads and writes
    # one atomic step across threads and processes (SQLAlchemy's documented recipe).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers proceed while a writer commits
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


# SQLite's and PostgreSQL's words for a table that is not there.
_MISSING_TABLE = re.compile(r"no such table|relation \S+ does not exist")
_UNAVAILABLE = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection came free in time
)


def _unavailable(err: BaseException) -> bool:
    # SQLite reports a missing table as an OperationalError too: that is the schema, not
    # the database being away.
    return isinstance(err, _UNAVAILABLE) and not _MISSING_TABLE.search(_first_line(err))


def _first_line(err: BaseException) -> str:
    orig = getattr(err, "orig", None)
    message = str(orig if orig is not None else err).strip()
    return message.splitlines()[0].strip() if message else type(err).__name__


_opened: dict[tuple[str, int, int], Database] = {}
_opened_lock = threading.Lock()


def open_database(
    environ: Mapping[str, str] | None = None, *, application_name: str = "fleet"
) -> Database:
    """The process's :class:`Database` for ``DATABASE_URL``: one pool shared by its queues.

    Called from a queue's activity factory, the pool is sized from the worker's activity
    slots (at most ``DEFAULT_POOL_CAP``) unless ``DATABASE_POOL_SIZE`` says otherwise.

    Raises:
        SettingError: ``DATABASE_URL`` or ``DATABASE_POOL_SIZE`` is malformed.
    """
    env = os.environ if environ is None else environ
    url = database_url(env)
    size = _pool_size(env)
    key = (url.render_as_string(hide_password=False), size, os.getpid())
    with _opened_lock:
        db = _opened.get(key)
        if db is None:
            db = _opened[key] = Database(url, pool_size=size, application_name=application_name)
        return db


async def database_call(fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """Run a blocking database function off the event loop, for an activity.

    Errors become what :func:`database_errors` says.
    """
    with database_errors():
        return await asyncio.to_thread(fn, *args, **kwargs)


@contextmanager
def database_errors() -> Iterator[None]:
    r"""Turn database failures inside the block into retryable ``ApplicationError``\ s.

    A database that is down, unreachable or timing out becomes type ``DatabaseUnavailable``
    naming the database (without its password): the activity is retried with its retry
    policy and the worker keeps running. Any other database error becomes a retryable
    ``DatabaseError`` with the driver's one-line message (never the bound values), with a
    hint when the schema is missing. Other exceptions pass unchanged.
    """
    try:
        yield
    except DatabaseUnavailable as err:
        raise ApplicationError(str(err), type=DATABASE_UNAVAILABLE) from None
    # Unavailability is already DatabaseUnavailable here (Database.transaction raises it).
    except sqlalchemy.exc.SQLAlchemyError as err:
        message = f"database error: {_first_line(err)}"
        if _MISSING_TABLE.search(message):
            message += " (the schema is not migrated: run `fleet db migrate`)"
        raise ApplicationError(message, type=DATABASE_ERROR) from None
