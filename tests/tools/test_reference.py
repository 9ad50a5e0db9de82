"""The docs' generated reference pages read their sources whole (fleet_devtools.reference)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import yaml

from fleet_devtools import reference
from fleet_devtools.reference import VALUES, VARIABLES, documented_keys

ROOT = Path(__file__).resolve().parents[2]
WORKERKIT = ROOT / "shared" / "src" / "workerkit"


def variable_constants() -> dict[str, str]:
    """Every ``*_VARIABLE = "NAME"`` in workerkit: a variable read one by one."""
    found = {}
    for path in WORKERKIT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id.endswith("_VARIABLE")
                and isinstance(node.value, ast.Constant)
            ):
                found[str(node.value.value)] = f"{path.relative_to(ROOT)}: {node.targets[0].id}"
    return found


def test_every_variable_read_one_by_one_is_in_the_settings_page() -> None:
    constants = variable_constants()
    assert len(constants) >= 10
    listed = {v.name for v in VARIABLES}
    missing = {name: where for name, where in constants.items() if name not in listed}
    assert not missing, f"add them to fleet_devtools.reference.VARIABLES: {missing}"
    page = reference.settings()
    assert all(f"`{name}`" in page for name in constants)


def leaves(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        return [leaf for k, v in node.items() for leaf in leaves(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def test_every_chart_value_is_documented_once() -> None:
    text = (ROOT / VALUES).read_text()
    documented = [key for key, _ in documented_keys(text)]
    assert len(documented) == len(set(documented)), "a key is documented twice"
    undocumented = [
        leaf
        for leaf in leaves(yaml.safe_load(text))
        if not any(leaf == key or leaf.startswith(f"{key}.") for key in documented)
    ]
    assert not undocumented, f"give these a `# --` comment in values.yaml: {undocumented}"


def testdocumented_keys_follow_the_helm_docs_convention() -> None:
    text = """\
# A section's comment documents nothing.
top:
  # -- The first line,
  # and its continuation.
  a: 1
  list:
    # -- A list item's key is not a value of its own.
    - name: x
      value: y
  # ---------- a banner documents nothing
  other: 1
  # -- Nested.
  b:
    c: "d"

# -- Back at the top.
e: []
"""
    assert documented_keys(text) == [
        ("top.a", "The first line, and its continuation."),
        ("top.b", "Nested."),
        ("e", "Back at the top."),
    ]
