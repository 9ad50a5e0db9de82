"""workerkit's database: DATABASE_URL, pools, error translation, `fleet db`, and /readyz."""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Table, text
from temporalio.exceptions import ApplicationError
from workerkit import (
    DATABASE_ERROR,
    DATABASE_UNAVAILABLE,
    Database,
    SettingError,
    database_call,
    database_url,
    discover_queues,
    open_database,
    schema_states,
)
from workerkit._slots import activity_slots

from support import WorkerProcess, free_port, http_get, run_cli, workdir_database

SpawnWorker = Callable[..., WorkerProcess]


def test_database_url_defaults_to_sqlite_in_the_state_dir(tmp_path: Path) -> None:
    url = database_url({"WORKER_STATE_DIR": str(tmp_path)})
    assert url.get_backend_name() == "sqlite" and url.database == str(tmp_path / "fleet.sqlite3")
    pg = database_url({"DATABASE_URL": "postgresql://u:p@db:5432/fleet"})
    assert pg.drivername == "postgresql+psycopg" and pg.host == "db"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("mysql://u:hunter2secret@db/x", "expected postgresql://"),
        ("not a url", "expected postgresql://"),
        ("sqlite://", "a file, not in memory"),
        ("postgresql:///fleet", "with a host"),
    ],
)
def test_a_malformed_url_is_a_setting_error_without_the_password(raw: str, problem: str) -> None:
    with pytest.raises(SettingError, match="DATABASE_URL") as info:
        database_url({"DATABASE_URL": raw})
    assert problem in str(info.value) and "hunter2secret" not in str(info.value)


def test_the_pool_is_sized_from_the_activity_slots_and_capped(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgresql://u:p@127.0.0.1:1/x"}
    with activity_slots(2):
        assert open_database(env).pool_size == 2
    with activity_slots(50):
        assert open_database(env).pool_size == 4  # pods x pool must stay under max_connections
    assert open_database(env | {"DATABASE_POOL_SIZE": "9"}).pool_size == 9
    with pytest.raises(SettingError, match="DATABASE_POOL_SIZE='0' is invalid"):
        open_database(env | {"DATABASE_POOL_SIZE": "0"})
    with activity_slots(3):  # one pool per process and URL: the queues of `--all` share it
        assert open_database(env) is open_database(env)


async def test_an_unreachable_database_fails_retryably_and_names_it_without_password() -> None:
    db = Database(
        database_url({"DATABASE_URL": f"postgresql://u:s3cret@127.0.0.1:{free_port()}/x"}),
        pool_size=1,
    )
    started = time.monotonic()
    with pytest.raises(ApplicationError) as info:
        await database_call(db.ping)
    err = info.value
    assert err.type == DATABASE_UNAVAILABLE and not err.non_retryable
    assert err.message.startswith("database unavailable (postgresql://u:***@127.0.0.1:")
    assert "s3cret" not in err.message and "Connection refused" in err.message
    assert time.monotonic() - started < 10


async def test_other_database_errors_are_retryable_one_liners_without_values(
    tmp_path: Path,
) -> None:
    db = Database(database_url({"WORKER_STATE_DIR": str(tmp_path)}), pool_size=1)

    def insert_secret() -> None:
        with db.transaction() as conn:
            conn.execute(text("INSERT INTO orders_stock VALUES (:s, 1)"), {"s": "card 4242"})

    with pytest.raises(ApplicationError) as info:
        await database_call(insert_secret)
    assert info.value.type == DATABASE_ERROR and not info.value.non_retryable
    message = info.value.message
    assert message.startswith("database error: no such table: orders_stock")
    assert "run `fleet db migrate`" in message and "4242" not in message and "\n" not in message


@pytest.mark.slow
def test_fleet_db_migrate_and_status(tmp_path: Path) -> None:
    env = {"WORKER_STATE_DIR": str(tmp_path), "DATABASE_URL": ""}
    behind = run_cli("db", "status", env=env)
    assert behind.returncode == 1 and "orders           empty" in behind.stdout
    first = run_cli("db", "migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "orders: migrated empty -> orders_0001" in first.stdout
    again = run_cli("db", "migrate", "orders", env=env)
    assert again.returncode == 0 and again.stdout == "orders: up to date at orders_0001\n"
    assert run_cli("db", "status", env=env).returncode == 0

    # A newer build migrated further (a revision this build does not know): this build's
    # migrate changes nothing and its status is not "behind".
    db = workdir_database(tmp_path)
    with db.transaction() as conn:
        conn.execute(text("UPDATE alembic_version_orders SET version_num = 'orders_9999'"))
    newer = run_cli("db", "migrate", "orders", env=env)
    assert newer.returncode == 0
    assert (
        newer.stdout == "orders: at orders_9999, newer than this build's orders_0001: unchanged\n"
    )
    status = run_cli("db", "status", "orders", env=env)
    assert status.returncode == 0 and "newer than this build" in status.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["migrate"], {"DATABASE_URL": "mysql://x/y"}, 2, "error: DATABASE_URL='mysql://x/y'"),
        (["migrate", "nope"], {}, 2, "error: unknown queue 'nope'"),
        (["migrate", "--wait", "soon"], {}, 2, "error: --wait 'soon' is not a duration"),
        (
            ["status", "--wait", "1s"],
            {"DATABASE_URL": "postgresql://fleet:pw-9f3k@127.0.0.1:1/fleet"},
            1,
            "error: database unavailable (postgresql://fleet:***@127.0.0.1:1/fleet)",
        ),
    ],
)
def test_fleet_db_errors_are_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], code: int, message: str
) -> None:
    done = run_cli("db", *args, env={"WORKER_STATE_DIR": str(tmp_path), **env})
    assert done.returncode == code, done
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
    assert "pw-9f3k" not in done.stderr


@pytest.mark.slow
@pytest.mark.usefixtures("fixture_queue")
async def test_readyz_says_when_the_schema_is_behind(
    spawn_worker: SpawnWorker, tmp_path: Path
) -> None:
    state = tmp_path / "unmigrated"
    state.mkdir()
    url = f"sqlite:///{state / 'fleet.sqlite3'}"
    worker = spawn_worker(
        "fixture", env={"DATABASE_URL": url, "WORKER_SERVER_CHECK_INTERVAL": "1s"}
    )
    deadline = time.monotonic() + 30
    while True:
        status, reason = http_get(worker.url("/readyz"))
        if "schema" in reason:
            break
        assert time.monotonic() < deadline, (status, reason, worker.log())
        await asyncio.sleep(0.2)
    assert status == 503
    assert reason.strip() == (
        "database schema behind this build (fixture at nothing, needs fixture_0001): "
        "run `fleet db migrate`"
    )
    assert run_cli("db", "migrate", env={"DATABASE_URL": url}).returncode == 0
    deadline = time.monotonic() + 30
    while http_get(worker.url("/readyz"))[0] != 200:
        assert time.monotonic() < deadline, worker.log()
        await asyncio.sleep(0.2)
    # The log told the same story: polling but not ready and why, once; then up to date.
    messages = [json.loads(x)["msg"] for x in worker.log().splitlines() if x.startswith("{")]
    assert "worker ready" not in messages
    assert messages.count("worker polling but not ready") == 1
    assert messages.count("the database schema is up to date") == 1


def test_the_schema_check_leaves_nothing_behind(any_database: Database) -> None:
    """Readiness checks the schema every few seconds for as long as the worker runs: a check
    must not keep anything (it once filled the engine's statement cache with a new entry
    per check, each holding a Table, and pushed the services' own statements out)."""
    queues = [q for q in discover_queues().values() if q.migrations]
    assert [s.up_to_date for s in schema_states(any_database, queues)] == [True] * len(queues)
    with any_database.transaction() as conn:  # a service's own statement, cached
        conn.execute(text("SELECT available FROM orders_stock WHERE sku = :s"), {"s": "x"})

    def tables() -> int:
        gc.collect()
        return sum(isinstance(o, Table) for o in gc.get_objects())

    cache = any_database.engine._compiled_cache
    assert cache is not None
    cached, before = len(cache), tables()
    for _ in range(50):
        schema_states(any_database, queues)
    assert tables() == before
    assert len(cache) == cached
