"""The Docker engine and the base image, before anything is built.

Installs what is missing (Debian's docker.io and docker-compose) and starts dockerd when no
engine answers (`dockerd --iptables=false`, or E2E_DOCKERD_ARGS; log in .data/e2e/; stopped
at the end). Uses the official base image (PYTHON_IMAGE) if it is present or can be pulled;
otherwise builds the local stand-in from Debian packages (deploy/docker/build-base-image.sh),
as `make images` does (scripts/compose_stack/images.py).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess

from compose_stack import images
from compose_stack.stack import Stack

from .commands import STATE, Failed, ok, run, say, wait_for
from .report import Report


def apt_install(*packages: str) -> None:
    """Install Debian ``packages`` (as root only)."""
    if os.geteuid() != 0:
        raise Failed(f"{', '.join(packages)} missing: install them, or run as root")
    say(f"   apt-get install {' '.join(packages)}")
    run("apt-get", "update", "-qq", timeout=600)
    run(
        "apt-get",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        *packages,
        env={"DEBIAN_FRONTEND": "noninteractive"},
        timeout=900,
    )


def ensure_tools() -> None:
    """Install docker and compose where missing (dockerd only if no engine answers)."""
    missing = []
    if not shutil.which("docker") or (not ok("docker", "info") and not shutil.which("dockerd")):
        missing.append("docker.io")
    if not ok("docker", "compose", "version") and not shutil.which("docker-compose"):
        missing.append("docker-compose")
    if missing:
        apt_install(*missing)


def ensure_engine() -> subprocess.Popen[bytes] | None:
    """Start dockerd unless an engine answers; return the process this script started."""
    if ok("docker", "info"):
        return None
    if os.geteuid() != 0:
        raise Failed("no Docker engine answers, and starting dockerd needs root")
    STATE.mkdir(parents=True, exist_ok=True)
    args = shlex.split(os.environ.get("E2E_DOCKERD_ARGS", "--iptables=false"))
    say(f"   starting dockerd {' '.join(args)} (log: {STATE / 'dockerd.log'})")
    with (STATE / "dockerd.log").open("ab") as log:
        proc = subprocess.Popen(
            ["dockerd", *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for("dockerd answers", lambda: proc.poll() is None and ok("docker", "info"), 90)
    except Failed:
        stop_engine(proc)
        tail = (STATE / "dockerd.log").read_text(errors="replace")[-3000:]
        raise Failed(f"dockerd did not start:\n{tail}") from None
    return proc


def stop_engine(proc: subprocess.Popen[bytes]) -> None:
    """Stop the dockerd ``ensure_engine`` started (killed after a minute)."""
    say(f"   stopping the dockerd this test started (pid {proc.pid})")
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def base_image(report: Report) -> str:
    """The official base image if present or pullable, else the local stand-in (built once)."""
    image = images.base_image(Stack.from_env())
    stand_in = image == images.LOCAL_PYTHON_IMAGE
    report.check("base image", True, f"{image} (stand-in)" if stand_in else image)
    return image
