"""The committed rule files and compose configs are exactly what the renderers produce now."""

from __future__ import annotations

from testbed.metrics.render import compose_files
from testbed.settings import REPO_ROOT

FIX = "run `.venv/bin/python -m testbed.metrics.cli render` and commit the result"


def test_committed_files_equal_a_fresh_rendering() -> None:
    stale = [
        str(path.relative_to(REPO_ROOT))
        for path, content in compose_files().items()
        if not path.exists() or path.read_text() != content
    ]
    assert not stale, f"stale generated files {stale}: {FIX}"
