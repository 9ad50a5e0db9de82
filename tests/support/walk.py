"""Run a docs page's shell blocks as a reader would: in order, in one shell, as written.

A block runs unless an HTML comment right above it (invisible on the site) says otherwise:

- ``<!-- walk: provided (why) -->``: the test provides what it does (``make dev``: the test
  starts the dev server and the workers itself, on ports of its own);
- ``<!-- walk: skip (why) -->``: another test covers it (e.g. ``make deploy`` needs Docker:
  ``make e2e``).

The addresses a page names (the dev server's 7233, the worker's 9000) are replaced by the
test's own ports before the blocks run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[a-z]*)\s*$")
_MARK = re.compile(r"<!--\s*walk:\s*(?P<mode>provided|skip)\b(?P<why>.*?)-->")
SHELLS = ("sh", "bash", "shell")


@dataclass(frozen=True)
class Block:
    """One fenced shell block of a page."""

    line: int
    text: str
    mode: Literal["run", "provided", "skip"]
    why: str = ""


def shell_blocks(page: Path) -> list[Block]:
    """The page's shell blocks, each with what the test does with it."""
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        start, end = i, i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if fence["lang"] in SHELLS:
            above = next((t for t in reversed(lines[:start]) if t.strip()), "")
            mark = _MARK.search(above)
            blocks.append(
                Block(
                    line=start + 1,
                    text=textwrap.dedent("\n".join(lines[start + 1 : end])),
                    mode=mark["mode"] if mark else "run",  # type: ignore[arg-type]
                    why=mark["why"].strip(" ()") if mark else "",
                )
            )
        i = end + 1
    return blocks


def walk(
    page: Path,
    *,
    cwd: Path,
    env: Mapping[str, str],
    ports: Mapping[int, int],
    timeout: float = 600,
) -> str:
    """Run the page's runnable blocks in one bash, in order, in ``env`` (the whole
    environment); return what they printed.

    Raises:
        AssertionError: A block failed, naming the page's line where it starts.
    """
    script = ["set -euo pipefail"]
    for block in shell_blocks(page):
        if block.mode != "run":
            continue
        text = block.text
        for page_port, own_port in ports.items():
            text = text.replace(f"127.0.0.1:{page_port}", f"127.0.0.1:{own_port}")
        # A marker on stderr names the block that fails.
        script += [f"echo '--- {page.name}:{block.line}' >&2", text]
    bash = shutil.which("bash") or "/bin/bash"
    out = subprocess.run(
        [bash, "-c", "\n".join(script)],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    failed_at = re.findall(r"^--- (\S+)$", out.stderr, re.M)
    assert out.returncode == 0, (
        f"the block at {failed_at[-1] if failed_at else page.name} failed "
        f"(exit {out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    return out.stdout
