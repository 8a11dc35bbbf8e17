"""Session fixtures: the one native stack per test session.

``native_stack`` brings the stack (``TESTBED_STATE_DIR`` / ``TESTBED_PORT_OFFSET`` pick which) up once
and yields its ``RenderContext``. A stack already running is reused (missing components started) and
left running. A stack brought up from nothing by a test session is brought down by the last test
session using it, so ``make test`` leaves no process behind, even when sessions overlap
(``TESTBED_KEEP_STACK=1`` keeps it running, for faster re-runs).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from testbed.context import RenderContext
from testbed.native.control import NativeStack, StackError


def _leases_dir(ctx: RenderContext) -> Path:
    return ctx.state_dir / "run" / "test-sessions"


def _started_by_tests(ctx: RenderContext) -> Path:
    """Present while the running stack is one a test session brought up from nothing."""
    return _leases_dir(ctx) / "started-by-a-test-session"


def _other_live_sessions(ctx: RenderContext) -> list[int]:
    pids = []
    for lease in _leases_dir(ctx).glob("*.lease"):
        pid = int(lease.stem)
        if pid != os.getpid() and psutil.pid_exists(pid):
            pids.append(pid)
    return pids


@pytest.fixture(scope="session")
def native_stack() -> Iterator[RenderContext]:
    try:
        stack = NativeStack()
        ctx = stack.ctx
        with stack.exclusive():
            leases = _leases_dir(ctx)
            leases.mkdir(parents=True, exist_ok=True)
            (leases / f"{os.getpid()}.lease").touch()
            was_running = stack.client.is_running()
            if not was_running:
                _started_by_tests(ctx).touch()
            if not (was_running and all(item.health == "healthy" for item in stack.status().values())):
                stack.up()
    except StackError as exc:
        pytest.fail(f"native stack did not come up: {exc}\n{exc.detail}", pytrace=False)
    yield ctx
    with stack.exclusive():
        (_leases_dir(ctx) / f"{os.getpid()}.lease").unlink(missing_ok=True)
        last_one_out = not _other_live_sessions(ctx)
        if last_one_out and _started_by_tests(ctx).exists() and os.environ.get("TESTBED_KEEP_STACK") != "1":
            stack.down()
            _started_by_tests(ctx).unlink(missing_ok=True)
