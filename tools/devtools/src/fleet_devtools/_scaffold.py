"""Render the service template for a queue name, refusing names that cannot work."""

from __future__ import annotations

import importlib.util
import keyword
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

from jinja2 import Environment, StrictUndefined
from workerkit import NAME_PATTERN

__all__ = ["ScaffoldError", "plan_queue", "workspace_root", "write_queue"]

_TEMPLATE = files("fleet_devtools") / "template"
# Names that would shadow the project's own packages or test modules.
_RESERVED = {"workerkit", "services", "shared", "tests", "test", "support", "conftest", "bench"}


class ScaffoldError(Exception):
    """The queue cannot be generated, or the derived files written; nothing was written."""


def workspace_root(start: Path) -> Path:
    """The uv workspace (the repository) that ``start`` is in."""
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.exists() and "[tool.uv.workspace]" in pyproject.read_text():
            return folder
    raise ScaffoldError(f"no uv workspace (pyproject.toml with [tool.uv.workspace]) above {start}")


def _check_name(name: str, root: Path) -> None:
    if not NAME_PATTERN.match(name):
        raise ScaffoldError(
            f"{name!r} is not a valid queue name: use a lower-case letter followed by up to "
            "29 lower-case letters or digits (it becomes a package, an image and a DNS label)"
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise ScaffoldError(f"{name!r} is a Python keyword")
    if name in _RESERVED or name in sys.stdlib_module_names:
        raise ScaffoldError(f"{name!r} is reserved: it would shadow an existing module")
    if (root / "services" / name).exists():
        raise ScaffoldError(f"queue {name!r} already exists: services/{name}")
    if importlib.util.find_spec(name) is not None:
        raise ScaffoldError(f"{name!r} would shadow the installed module {name!r}")


def _walk(node: object, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for child in node.iterdir():  # type: ignore[attr-defined]
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            if child.name != "__pycache__":
                out.extend(_walk(child, rel + "/"))
        else:
            out.append((rel, child.read_text()))
    return out


def plan_queue(name: str, root: Path) -> dict[Path, str]:
    """Return every file to write for queue ``name`` under ``root``, rendered.

    Raises:
        ScaffoldError: The name is invalid, reserved, or already taken.
    """
    _check_name(name, root)
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True)
    context = {"name": name, "Name": name.capitalize(), "NAME": name.upper()}
    planned: dict[Path, str] = {}
    for rel, text in _walk(_TEMPLATE):
        target = env.from_string(rel.removesuffix(".j2")).render(context)
        planned[root / target] = (
            env.from_string(text).render(context) if rel.endswith(".j2") else text
        )
    return planned


def write_queue(name: str, root: Path) -> list[Path]:
    """Generate queue ``name`` under ``root``; return the files written.

    Everything is rendered before anything is written, so an error leaves no trace.
    """
    planned = plan_queue(name, root)
    clashes = [p for p in planned if p.exists()]
    if clashes:
        raise ScaffoldError(f"refusing to overwrite {', '.join(str(p) for p in clashes)}")
    for path, text in planned.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    _format([p for p in planned if p.suffix == ".py"], root)
    return sorted(planned)


def _format(paths: list[Path], root: Path) -> None:
    # The templates are written for a short name; a long one makes lines the project's
    # formatter would wrap. Running it here keeps a new queue lint-clean for any name.
    ruff = shutil.which("ruff")
    if ruff is None:  # outside the dev environment: the files are valid, only unformatted
        return
    done = subprocess.run(
        [ruff, "format", "--quiet", *map(str, paths)], cwd=root, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise ScaffoldError(f"ruff format failed on the generated files: {done.stderr.strip()}")
