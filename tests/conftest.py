"""Session fixtures: the one native stack per test session.

``native_stack`` brings the stack (``TESTBED_STATE_DIR`` / ``TESTBED_PORT_OFFSET`` pick which) up once
and yields its ``RenderContext``. A stack already running is reused (missing components started) and
left running; a stack this session started from nothing is brought down at the end, so ``make test``
leaves no process behind (``TESTBED_KEEP_STACK=1`` keeps it running, for faster re-runs).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from testbed.context import RenderContext
from testbed.native.control import NativeStack, StackError


@pytest.fixture(scope="session")
def native_stack() -> Iterator[RenderContext]:
    try:
        stack = NativeStack()
        # A stack already running (someone's, or a previous session's) is healed if need be and left
        # running afterwards; one this session brings up from nothing is brought down at the end.
        was_running = stack.client.is_running()
        if not (was_running and all(item.health == "healthy" for item in stack.status().values())):
            stack.up()
    except StackError as exc:
        pytest.fail(f"native stack did not come up: {exc}\n{exc.detail}", pytrace=False)
    yield stack.ctx
    if not was_running and os.environ.get("TESTBED_KEEP_STACK") != "1":
        stack.down()
