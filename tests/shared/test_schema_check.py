"""The readiness check of a queue's schema reads what Alembic would, without loading Alembic."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic.util import CommandError
from sqlalchemy import text
from workerkit import Queue, open_database
from workerkit._migrations import (
    _alembic_current,
    _alembic_revisions,
    _current,
    _read_revisions,
    _revisions_of,
    version_table,
)


def revisions(root: Path, package: str, files: dict[str, str]) -> str:
    """A package of revision files under ``root`` (on sys.path); return its name."""
    folder = root / package
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for name, body in files.items():
        (folder / name).write_text(textwrap.dedent(body))
    return package


def rev(revision: str, down: str = "None", extra: str = "") -> str:
    return f"from alembic import op\nrevision = {revision!r}\ndown_revision = {down}\n{extra}"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_the_fixture_queue_s_revisions_read_as_alembic_reads_them(fixture_queue: Queue) -> None:
    assert fixture_queue.migrations is not None
    found = _read_revisions(fixture_queue.migrations)
    expected = ("fixture_0001", frozenset({"fixture_0001"}))
    assert found == _alembic_revisions(fixture_queue.migrations) == expected


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("empty", {}),  # no revision yet
        (
            "line",
            {"0001_a.py": rev("a"), "0002_b.py": rev("b", "'a'"), "0003_c.py": rev("c", "'b'")},
        ),
        (  # annotated, as `alembic revision` writes them, and a file that is not one
            "annotated",
            {
                "x.py": 'revision: str = "x"\ndown_revision: str | None = None\n'
                "branch_labels = None\ndepends_on = None\n",
                "y.py": 'revision: str = "y"\ndown_revision: str | None = "x"\n',
                "notes.txt": "not a revision",
            },
        ),
        (
            "merged",
            {
                "a.py": rev("a"),
                "b.py": rev("b", "'a'"),
                "c.py": rev("c", "'a'"),
                "m.py": rev("m", "('b', 'c')"),
            },
        ),
    ],
)
def test_plain_histories_are_read_from_source(root: Path, name: str, files: dict[str, str]) -> None:
    package = revisions(root, f"plain_{name}", files)
    found = _read_revisions(package)
    assert found is not None and found == _alembic_revisions(package)


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("heads", {"a.py": rev("a"), "b.py": rev("b", "'a'"), "c.py": rev("c", "'a'")}),
        ("computed", {"a.py": "revision = 'a' + 'b'\ndown_revision = None\n"}),
        ("labelled", {"a.py": rev("a", extra="branch_labels = ('main',)\n")}),
        (
            "rebound",
            {"a.py": rev("a", extra="def f():\n    global revision\n    revision = 'z'\n")},
        ),
        ("orphan", {"a.py": rev("a"), "b.py": rev("b", "'missing'")}),
    ],
)
@pytest.mark.filterwarnings("ignore:Revision missing:UserWarning")  # Alembic's, on the orphan
def test_anything_else_is_left_to_alembic(root: Path, name: str, files: dict[str, str]) -> None:
    package = revisions(root, f"other_{name}", files)
    assert _read_revisions(package) is None
    try:
        expected: object = _alembic_revisions(package)
    except Exception as err:  # Alembic refuses it (two heads): so does the check
        with pytest.raises(type(err)):
            _revisions_of(package)
    else:
        assert _revisions_of(package) == expected


def test_the_version_table_reads_as_alembic_reads_it(tmp_path: Path, fixture_queue: Queue) -> None:
    db = open_database({"WORKER_STATE_DIR": str(tmp_path), "DATABASE_URL": ""})
    table = version_table(fixture_queue)
    try:
        with db.transaction() as conn:
            assert _current(conn, fixture_queue) is None is _alembic_current(conn, fixture_queue)
            conn.execute(text(f"CREATE TABLE {table} (version_num VARCHAR(32) NOT NULL)"))
            assert _current(conn, fixture_queue) is None is _alembic_current(conn, fixture_queue)
            conn.execute(text(f"INSERT INTO {table} VALUES ('fixture_0001')"))
            current = _current(conn, fixture_queue)
            assert current == "fixture_0001" == _alembic_current(conn, fixture_queue)
            conn.execute(text(f"INSERT INTO {table} VALUES ('fixture_0002')"))
            with pytest.raises(CommandError, match="more than one head"):
                _current(conn, fixture_queue)
    finally:
        db.dispose()


@pytest.mark.slow
def test_a_worker_s_schema_check_loads_no_alembic(tmp_path: Path, fixture_queue: Queue) -> None:
    code = """
        import sys
        from sqlalchemy import text
        from workerkit import get_queue, open_database, schema_states

        db = open_database({"WORKER_STATE_DIR": sys.argv[1], "DATABASE_URL": ""})
        with db.transaction() as conn:
            conn.execute(text("CREATE TABLE alembic_version_fixture (version_num VARCHAR(32))"))
            conn.execute(text("INSERT INTO alembic_version_fixture VALUES ('fixture_0001')"))
        [state] = schema_states(db, [get_queue("fixture")])
        assert state.up_to_date, state
        assert not [m for m in sys.modules if m.split(".")[0] == "alembic"]
    """
    done = subprocess.run(  # the fixture queue's registration is inherited through PYTHONPATH
        [sys.executable, "-c", textwrap.dedent(code), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
