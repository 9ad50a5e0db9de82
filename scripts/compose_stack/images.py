"""The images the stack builds, and the base image they build on.

Base image: PYTHON_IMAGE (default the official python:3.11-slim-bookworm) is used when it is
present or can be pulled; when the default cannot be pulled (no registry), a local stand-in
is used, built once from Debian packages by deploy/docker/build-base-image.sh (needs root).
Grafana, the one pulled image the stack runs, is left out when it cannot be pulled.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

from .process import Failed, log, output, run, succeeds
from .stack import Stack

OFFICIAL_PYTHON_IMAGE = "python:3.11-slim-bookworm"
LOCAL_PYTHON_IMAGE = "temporal-fleet/python:3.11-bookworm-local"
BASE_IMAGE_SCRIPT = "deploy/docker/build-base-image.sh"
# The images the stack builds (and `make deploy`'s builds: temporal-fleet-<queue>:<build id>).
IMAGE_PREFIX = "temporal-fleet-"


def base_image(stack: Stack, *, quiet: bool = False) -> str:
    """The base image of every build, set as PYTHON_IMAGE in the stack's environment.

    Raises:
        Failed: An explicit PYTHON_IMAGE is missing, or the stand-in is and this is not root.
    """
    say: Callable[[str], None] = (lambda _: None) if quiet else log
    image = stack.var("PYTHON_IMAGE", OFFICIAL_PYTHON_IMAGE)
    if not succeeds("docker", "image", "inspect", image):
        say(f"pulling {image}")
        if succeeds("docker", "pull", "-q", image):
            pass
        elif image != OFFICIAL_PYTHON_IMAGE:
            raise Failed(f"PYTHON_IMAGE={image} is neither present nor pullable")
        else:
            say(f"{image} cannot be pulled: using the local stand-in {LOCAL_PYTHON_IMAGE}")
            image = LOCAL_PYTHON_IMAGE
            if not succeeds("docker", "image", "inspect", image):
                if os.geteuid() != 0:
                    raise Failed(f"build it once as root: sudo {BASE_IMAGE_SCRIPT}")
                run(["bash", BASE_IMAGE_SCRIPT, image], env=stack.env, capture=False)
    stack.env["PYTHON_IMAGE"] = image
    return image


def grafana_enabled(stack: Stack) -> bool:
    """Whether Grafana starts: FLEET_GRAFANA=1|0 decides, else (auto) its image is at hand."""
    choice = stack.var("FLEET_GRAFANA", "auto")
    if choice in ("1", "true", "yes"):
        return True
    if choice in ("0", "false", "no"):
        return False
    image = stack.env["GRAFANA_IMAGE"]
    if succeeds("docker", "image", "inspect", image) or succeeds("docker", "pull", "-q", image):
        return True
    log(f"Grafana left out: {image} cannot be pulled (FLEET_GRAFANA=1 insists)")
    return False


def set_image_labels(stack: Stack) -> None:
    """FLEET_VERSION and FLEET_REVISION (the images' labels) from git, unless set."""
    for name, git, fallback in (
        ("FLEET_VERSION", ["describe", "--tags", "--always", "--dirty"], "dev"),
        ("FLEET_REVISION", ["rev-parse", "HEAD"], "unknown"),
    ):
        if not stack.env.get(name):
            stack.env[name] = (output("git", *git) or "").strip() or fallback


def image_sizes(stack: Stack) -> list[tuple[str, float, float]]:
    """(image, MB, MB added over the base image) of every image the stack builds."""
    services = stack.config()["services"].values()
    refs = sorted(
        {str(s["image"]) for s in services if str(s.get("image", "")).startswith(IMAGE_PREFIX)}
    )
    base = size_of(stack.var("PYTHON_IMAGE", OFFICIAL_PYTHON_IMAGE))
    sizes = {ref: size_of(ref) for ref in refs}
    return [(ref, size / 1e6, (size - base) / 1e6) for ref, size in sizes.items()]


def size_of(image: str) -> int:
    """An image's size in bytes (0 when it is not there)."""
    inspected = output("docker", "image", "inspect", image)
    return int(json.loads(inspected)[0]["Size"]) if inspected else 0


def build_images(stack: Stack) -> None:
    """Build every image on the base image, then print their sizes (`make images`)."""
    image = base_image(stack)
    set_image_labels(stack)
    log(f"building the images on {image}")
    started = time.monotonic()
    stack.compose("build", capture=False)
    log(f"images built in {time.monotonic() - started:.0f} s")
    out = [f"{'image':<36} {'size':>12} {'added over base':>16}"]
    out += [f"{r:<36} {mb:10.1f} MB {added:13.1f} MB" for r, mb, added in image_sizes(stack)]
    out.append(f"{'':<36} {size_of(image) / 1e6:10.1f} MB  (base: {image})")
    print("\n".join(out), file=sys.stderr)
