"""A copy of the sources the images build from, with OrderWorkflow changed: what the deploy
phases hand `make deploy CONTEXT=...`."""

from __future__ import annotations

import shutil
from pathlib import Path

from .commands import ROOT, STATE, Failed

# OrderWorkflow's run method, which a change goes right after.
ORDER_RUN = "    async def run(self, order: Order) -> OrderResult:\n"


def changed_tree(name: str, first_line: str) -> Path:
    """A copy of the sources in .data/e2e/``name``, ``first_line`` made OrderWorkflow.run's
    first line (indented as its body)."""
    tree = STATE / name
    shutil.rmtree(tree, ignore_errors=True)
    ignore = shutil.ignore_patterns(".venv", "__pycache__", "*.pyc", ".*_cache")
    for part in ("shared", "services", "deploy/docker/worker"):
        shutil.copytree(ROOT / part, tree / part, ignore=ignore)
    for file in ("pyproject.toml", "uv.lock", ".dockerignore"):
        shutil.copy2(ROOT / file, tree / file)
    workflows = tree / "services/orders/src/orders/workflows.py"
    text = workflows.read_text()
    if ORDER_RUN not in text:
        raise Failed("OrderWorkflow.run's signature changed: update the e2e's ORDER_RUN")
    workflows.write_text(text.replace(ORDER_RUN, ORDER_RUN + first_line, 1))
    return tree
