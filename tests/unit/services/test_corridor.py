"""The system under test stays separable: nothing under ``services/`` imports the testbed.

The testbed assembles the services (testbed/native/services.py); a service that imported ``testbed``
would drag the harness into its image and tie a team's code to it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from testbed.settings import REPO_ROOT

SERVICES_ROOT = REPO_ROOT / "services"


def imports_of_testbed(root: Path) -> list[str]:
    """``file:line module`` for every import of ``testbed`` (top-level or nested) under ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                if module == "testbed" or module.startswith("testbed."):
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {module}")
    return found


def test_services_import_nothing_from_testbed() -> None:
    assert imports_of_testbed(SERVICES_ROOT) == []


def test_the_scan_sees_nested_and_aliased_imports(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "a.py").write_text("def f():\n    import testbed.native as n\n")
    (tmp_path / "svc" / "b.py").write_text("from testbed.context import RenderContext\nimport testbedx\n")
    assert imports_of_testbed(tmp_path / "svc") == ["svc/a.py:2 testbed.native", "svc/b.py:1 testbed.context"]
