"""A throw-away native render context (state dir in tmp, real PKI) for config checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from testbed import settings
from testbed.context import RenderContext
from testbed.native.pki import ensure_pki
from testbed.secrets import load_or_create


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `testbed setup` (Debian package of the metrics stack)")
    return path


@pytest.fixture(scope="session")
def promtool_bin() -> str:
    return _require_tool("promtool")


@pytest.fixture(scope="session")
def amtool_bin() -> str:
    return _require_tool("amtool")


@pytest.fixture
def native_ctx(tmp_path: Path) -> RenderContext:
    state = tmp_path / "state"
    ctx = RenderContext(mode="native", state_dir=state, ports=settings.ports(), secrets=load_or_create(state))
    ensure_pki(ctx.pki_dir)
    return ctx
