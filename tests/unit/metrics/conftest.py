"""A throw-away native render context (state dir in tmp, real PKI) for config checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed import settings
from testbed.context import RenderContext
from testbed.native import builds
from testbed.native.pki import ensure_pki
from testbed.secrets import load_or_create


def _require_tool(name: str) -> str:
    """The compose version of ``name``, as `testbed setup` builds it (never a distribution's older one)."""
    try:
        return str(builds.binary(name))
    except builds.BuildError as exc:
        pytest.fail(str(exc))


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
