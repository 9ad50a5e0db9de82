"""The worker image's size over its base image, read from the Docker engine (nothing is built:
``make images`` builds it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

IMAGE_TARGET_MB = 110.0  # a worker image over its base, at most
DEFAULT_IMAGE = "temporal-fleet-orders:dev"  # what `make images` tags the orders worker
# Where the images build on (scripts/compose_stack/images.py): PYTHON_IMAGE when set, the
# official slim image, or the local stand-in built from Debian packages.
BASE_CANDIDATES = ("python:3.11-slim-bookworm", "temporal-fleet/python:3.11-bookworm-local")
DOCKER_TIMEOUT_S = 20


def _inspect(image: str) -> dict[str, Any] | None:
    try:
        done = subprocess.run(
            ["docker", "image", "inspect", image],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found[0] if found else None


def engine_answers() -> str | None:
    """Why the size cannot be read (no docker CLI, no engine), or None when it can."""
    if shutil.which("docker") is None:
        return "no docker CLI"
    try:
        done = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            timeout=DOCKER_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return "the Docker engine did not answer"
    return None if done.returncode == 0 else "no Docker engine answers"


def _base_of(image: dict[str, Any], wanted: str | None) -> tuple[str, dict[str, Any]] | None:
    """The base image ``image`` was built on: ``wanted`` if given, else the first candidate
    whose layers start ``image``'s layers."""
    layers = image.get("RootFS", {}).get("Layers", [])
    names = [wanted] if wanted else [os.environ.get("PYTHON_IMAGE", ""), *BASE_CANDIDATES]
    for name in filter(None, names):
        base = _inspect(name)
        if base is None:
            continue
        base_layers = base.get("RootFS", {}).get("Layers", [])
        if wanted or layers[: len(base_layers)] == base_layers:
            return name, base
    return None


def image_figure(image: str = DEFAULT_IMAGE, base: str | None = None) -> dict[str, Any]:
    """The image's MB (10^6 bytes) over its base, against the target; ``value`` is None, and
    ``note`` says why, when it could not be measured."""
    figure: dict[str, Any] = {
        "label": "image over its base, MB",
        "image": image,
        "target": IMAGE_TARGET_MB,
        "value": None,
        "pass": None,
    }
    reason = engine_answers()
    inspected = None if reason else _inspect(image)
    if reason is None and inspected is None:
        reason = f"no image {image} (make images builds it)"
    found = None if inspected is None else _base_of(inspected, base)
    if inspected is not None and found is None:
        reason = f"the base image of {image} is not here"
    if reason is not None or inspected is None or found is None:
        return figure | {"note": f"not measured: {reason}"}
    name, base_image = found
    over = (int(inspected["Size"]) - int(base_image["Size"])) / 1e6
    return figure | {
        "value": over,
        "pass": over <= IMAGE_TARGET_MB,
        "detail": f"{int(inspected['Size']) / 1e6:.1f} - {int(base_image['Size']) / 1e6:.1f} MB",
        "note": f"{image}, built {str(inspected.get('Created', '?'))[:19]}, over {name}",
    }
