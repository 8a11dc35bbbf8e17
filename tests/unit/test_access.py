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
