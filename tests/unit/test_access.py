"""The corridors between packages: the testbed reaches the stack through testbed.access, not chaos/."""

from __future__ import annotations

import ast
from pathlib import Path

from testbed.settings import REPO_ROOT


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_testbed_package_imports_nothing_from_the_chaos_extension() -> None:
    # chaos/ is a Chaos Toolkit extension built on the testbed; the arrow goes one way only.
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(
            m for m in _imported_modules(path) if m.split(".")[0] == "chaos"
        )
        for path in sorted((REPO_ROOT / "testbed").rglob("*.py"))
    }
    assert {path: modules for path, modules in offenders.items() if modules} == {}


def _backend_branches(path: Path) -> list[int]:
    """Lines comparing something other than a RenderContext's render ``mode`` to a backend's name."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Compare):
            continue
        names = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
        renders = isinstance(node.left, ast.Attribute) and node.left.attr == "mode"
        if {"native", "compose"} & set(names) and not renders:
            lines.append(node.lineno)
    return lines


def test_the_backend_switch_lives_in_one_place() -> None:
    # Everything else asks the Backend (testbed/backend.py's factory picks it), never its name.
    sources = [*(REPO_ROOT / "testbed").rglob("*.py"), *(REPO_ROOT / "chaos").rglob("*.py")]
    branches = {
        str(path.relative_to(REPO_ROOT)): lines
        for path in sorted(sources)
        if path != REPO_ROOT / "testbed" / "backend.py" and (lines := _backend_branches(path))
    }
    assert branches == {}
