"""Session fixtures: the one native stack per test session.

``native_stack`` brings the stack (``TESTBED_STATE_DIR`` / ``TESTBED_PORT_OFFSET`` pick which) up once
and yields its ``RenderContext``. A stack already running is reused (missing components started) and
left running. A stack brought up from nothing by a test session is brought down by the last test
session using it, so ``make test`` leaves no process behind, even when sessions overlap
(``TESTBED_KEEP_STACK=1`` keeps it running, for faster re-runs).

``make test`` runs the suite on two stacks at once (pytest-xdist, ``-n 2``, scheduled by path): most of
the wall time is waiting (fault windows, ``for:`` durations, alert resolution), not CPU. Worker ``gwN``
(N > 0) gets its own stack, shifted by N thousand ports and in its own state directory, and the live
tests are split into one scope per stack: the scenario catalog (and the services' contracts) on one,
everything else on the other.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from testbed import settings
from testbed.context import RenderContext
from testbed.native.control import NativeStack, StackError
from tests.machine_lock import machine_share

# Under ``make test`` (``pytest -n 2``) the suite runs on two stacks: the tests of these directories on the
# second, every other directory but tests/unit on the first (each test of tests/unit goes wherever a
# worker is free). By path, not by marker: xdist's scheduler sees only node ids.
SECOND_STACK_DIRS = ("tests/scenario/", "tests/services/")
ANY_WORKER_DIRS = ("tests/unit/",)
# Tests that judge "no alert at all" run first on their stack, before any earlier test's incident can
# leave a slow burn-rate window active.
QUIET_STACK_FIRST = ("test_healthy_load_raises_no_alert",)


def stack_scope(nodeid: str) -> str:
    """The scheduling unit of a test: one per stack; a tests/unit test is a unit of its own."""
    if nodeid.startswith(ANY_WORKER_DIRS):
        return nodeid
    return "second-stack" if nodeid.startswith(SECOND_STACK_DIRS) else "first-stack"


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist, worker gwN (N > 0) runs its own stack: N thousand ports up, its own state directory."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw") or 0)
    if index == 0:
        return
    os.environ["TESTBED_STATE_DIR"] = f"{settings.state_dir()}-{worker}"
    os.environ["TESTBED_PORT_OFFSET"] = str(int(os.environ.get("TESTBED_PORT_OFFSET", "0")) + 1000 * index)


@pytest.hookimpl(optionalhook=True)  # xdist's hook: `pytest -p no:xdist` must still run
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Scopes by stack (``stack_scope``). The two stack scopes are the largest, so each worker gets one of
    them first, and takes more work only when its own runs dry. (xdist's ``loadgroup`` would do this with
    markers, but it rewrites ``item._nodeid``, which pytest 9 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class StackScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return stack_scope(nodeid)

    return StackScheduling(config, log)


@pytest.fixture(autouse=True)
def _share_the_machine(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("native") is None:
        yield
        return
    with machine_share(exclusive=request.node.get_closest_marker("exclusive") is not None):
        yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """ "No alert at all" tests first (stable sort: the rest keep their order)."""
    items.sort(key=lambda item: item.name not in QUIET_STACK_FIRST)


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
