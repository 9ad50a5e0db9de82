"""End-to-end test of the container stack on a real Docker engine: `make e2e`.

    python3 tests/e2e/run_e2e.py

Not a pytest module (pytest collects test_*.py only, and these modules are none): it needs
root or a Docker engine, and takes minutes. System python3 runs it, the standard library
only. It stops at the first check that does not hold; in this order:

1. Tools, engine and base image (harness/engine.py): Docker and Compose installed, dockerd
   started when no engine answers (stopped at the end), the official base image or the
   local stand-in.
2. Builds every image and starts the stack, as `make images` and `make up` do
   (scripts/fleet_compose.py images / up), as project temporal-fleet-e2e (harness/stack.py);
   the Temporal UI answers.
3. The phases, PHASES below, each module's docstring saying what it shows:
   phases/workflows.py          a workflow on every queue, through `fleet` in the containers
   phases/containers.py         every worker healthy, hardened, scraped, in its memory limit
   phases/encryption.py         the server stores ciphertext; the UI's codec server decodes
   phases/scaling.py            `make scale` orders to 2: both replicas scraped and polling
   phases/kill_mid_activity.py  `docker kill` of the worker shipping an order: retried
   phases/kill_mid_charge.py    killed between the provider's charge and the shared ledger
   phases/restart.py            a crashed worker process: the restart policy
   phases/deploy.py             `make deploy` of a changed build; pinned orders stay; retire
   phases/rollback.py           `make deploy` of a failing build: rolled back, removed
4. Tears the stack down (`make down`, volumes too: nothing of the project may be left) and
   prints each phase's duration and the image sizes.

Environment: PYTHON_IMAGE (base image), E2E_DOCKERD_ARGS (flags of a dockerd this script
starts; default --iptables=false), E2E_KEEP=1 (leave the stack and the engine running).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The harness and the phases (package e2e, under tests/), and the stack's own package
# (scripts/compose_stack), as make up | scale | images | deploy use it.
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "scripts")]

from compose_stack import images  # noqa: E402
from compose_stack.process import Failed as StackFailed  # noqa: E402

from e2e.harness.commands import Failed, http_status, ok, say  # noqa: E402
from e2e.harness.engine import base_image, ensure_engine, ensure_tools, stop_engine  # noqa: E402
from e2e.harness.report import Report  # noqa: E402
from e2e.harness.stack import E2eStack, dump_logs, stack_env, tear_down  # noqa: E402
from e2e.phases import (  # noqa: E402
    Phase,
    containers,
    deploy,
    encryption,
    kill_mid_activity,
    kill_mid_charge,
    restart,
    rollback,
    scaling,
    workflows,
)

# Later phases build on earlier ones: the kills need scaling's two orders replicas, rollback
# deploy's current build.
PHASES: tuple[Phase, ...] = (
    workflows,
    containers,
    encryption,
    scaling,
    kill_mid_activity,
    kill_mid_charge,
    restart,
    deploy,
    rollback,
)


def main() -> int:
    """Start the stack, run every phase on it, tear it down and print the report.

    Returns:
        The exit code: 0 when every check held, 1 otherwise.
    """
    report = Report()
    engine: subprocess.Popen[bytes] | None = None
    stack: E2eStack | None = None
    keep = os.environ.get("E2E_KEEP") == "1"
    failure: str | None = None
    base = images.OFFICIAL_PYTHON_IMAGE
    sizes: list[tuple[str, float, float]] = []
    try:
        with report.phase("tools, engine and base image"):
            ensure_tools()
            engine = ensure_engine()
            base = base_image(report)
        stack = E2eStack.from_env(stack_env(base))
        with report.phase("build every image (make images)"):
            stack.script("down", "--volumes")  # leftovers of an interrupted run
            stack.script("images")
        with report.phase("start the stack and wait until healthy (make up)"):
            stack.script("up")
            ui = f"http://127.0.0.1:{stack.env['FLEET_UI_PORT']}/"
            report.check("Temporal UI answers on 127.0.0.1", http_status(ui) == 200, ui)
        for phase in PHASES:
            with report.phase(phase.TITLE):
                phase.check(stack, report)
    except StackFailed as err:
        failure = str(err)
    except KeyboardInterrupt:
        failure = "interrupted"
    except Exception as err:
        failure = f"{type(err).__name__}: {err}"
    finally:
        if failure and stack is not None:
            dump_logs(stack)
        if stack is not None and not keep:
            with report.phase("tear down (make down, volumes too)"):
                try:
                    tear_down(stack, base)
                except Failed as err:
                    failure = failure or str(err)
        if stack is not None and ok("docker", "info"):
            try:
                sizes = images.image_sizes(stack)
            except StackFailed as err:
                say(f"   no image sizes: {err}")
        if engine is not None and not keep:
            stop_engine(engine)
    return report.summary(base, sizes, failure)


if __name__ == "__main__":
    sys.exit(main())
