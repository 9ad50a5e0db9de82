"""A real PostgreSQL server for the tests: Debian's ``postgresql`` binaries, on a free port.

The server runs as the ``postgres`` user when the tests run as root (PostgreSQL refuses to
run as root), in a data directory that user owns; it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

from support import free_port

__all__ = ["PostgresServer", "postgres_bin"]


def postgres_bin() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: ``POSTGRES_BIN``, PATH, or Debian's."""
    configured = os.environ.get("POSTGRES_BIN")
    if configured:
        return Path(configured)
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_major)
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed: `apt-get install postgresql` (or set POSTGRES_BIN)"
        )
    return Path(found[-1]).parent


def _major(path: str) -> int:
    return int(Path(path).parent.parent.name)


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory; :meth:`stop` removes it."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="fleet-pg-"))
        self.data = self.root / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        # The port was free when picked, but another process (a parallel test worker) may take
        # it before the server binds it: then start again on another.
        for attempt in range(3):
            try:
                self.start()
                return
            except subprocess.CalledProcessError:
                if attempt == 2 or "already in use" not in self.server_log():
                    raise
                self.port = free_port()

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        """Start (or restart after :meth:`halt`) the server on the same port and data."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )

    def server_log(self) -> str:
        """What the server logged (its start-up errors too)."""
        log = self.root / "log"
        return log.read_text(errors="replace") if log.exists() else ""

    def halt(self) -> None:
        """Stop the server abruptly (connections cut), keeping its data for :meth:`start`."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        """Stop the server and delete its data."""
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "fleet", *, template: str | None = None) -> str:
        """Create a new database (empty, or a copy of ``template``); return its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        copy = f' TEMPLATE "{template}"' if template else ""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)
