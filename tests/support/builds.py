"""A queue's builds as real processes: each build a directory holding the queue's package
and its entry point (the registration an installed service has), put on ``PYTHONPATH`` of
its own ``fleet worker`` and ``fleet deploy`` processes, so every build runs its own code as
an image would. What each build's code is, is the test's: a function of the queue's and the
build's names returning the package's modules."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from support.fleet import WorkerProcess, run_cli

# The package every build's queue lives in: builds differ in their code, not their names.
PACKAGE = "rollout"


class QueueBuilds:
    """One queue's builds on disk, their worker processes and ``fleet deploy`` runs."""

    def __init__(
        self,
        queue: str,
        root: Path,
        address: str,
        spawn: Callable[..., WorkerProcess],
        modules: Callable[[str, str], Mapping[str, str]],
    ) -> None:
        self.queue = queue
        self.task_queue = f"{queue}-v1"
        self._root = root
        self._address = address
        self._spawn = spawn
        self._modules = modules

    def home(self, build: str) -> Path:
        home = self._root / build
        if home.exists():
            return home
        package = home / PACKAGE
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        for name, text in self._modules(self.queue, build).items():
            (package / f"{name}.py").write_text(text)
        dist = home / f"{PACKAGE}-0.0.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 0.0.0\n")
        (dist / "entry_points.txt").write_text(
            f"[workerkit.queues]\n{self.queue} = {PACKAGE}.queue:QUEUE\n"
        )
        return home

    def build_id(self, build: str) -> str:
        return f"{self.queue}-{build}"

    def env(self, build: str) -> dict[str, str]:
        return {
            "PYTHONPATH": str(self.home(build)),
            "TEMPORAL_ADDRESS": self._address,
            "TEMPORAL_NAMESPACE": "default",
            "TEMPORAL_WORKER_BUILD_ID": self.build_id(build),
        }

    def start(self, build: str, env: Mapping[str, str] | None = None) -> WorkerProcess:
        worker = self._spawn(self.queue, env={**self.env(build), **(env or {})})
        worker.wait_ready()
        return worker

    def deploy(self, build: str, *args: str, timeout: float = 120) -> tuple[int, str, str]:
        done = run_cli("deploy", *args, env=self.env(build), timeout=timeout)
        return done.returncode, done.stdout, done.stderr

    def status(self) -> dict[str, Any]:
        code, out, err = self.deploy("a", "status", self.queue, "--json")
        assert code == 0, err
        parsed: dict[str, Any] = json.loads(out)
        return parsed

    def builds(self) -> dict[str, dict[str, Any]]:
        return {b["build_id"].removeprefix(f"{self.queue}-"): b for b in self.status()["builds"]}

    async def begin(
        self, client: Client, workflow: str, workflow_id: str, *args: Any
    ) -> WorkflowHandle[Any, Any]:
        return await client.start_workflow(
            workflow,
            args=list(args),
            id=f"{self.queue}-{workflow_id}",
            task_queue=self.task_queue,
            result_type=list,
        )


def queue_name(prefix: str, test_name: str) -> str:
    """A queue (so a deployment and task queue) of the test's own: the dev server lives for
    the whole session, and a deployment's routing history with it."""
    return (prefix + "".join(c for c in test_name.split("_", 2)[-1] if c.isalnum()))[:30]
