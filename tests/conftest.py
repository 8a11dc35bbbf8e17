"""Session fixtures: the one native stack per test session.

``native_stack`` brings the stack (``TESTBED_STATE_DIR`` / ``TESTBED_PORT_OFFSET`` pick which) up once
and yields its ``RenderContext``. A stack that was already healthy is reused and left running; a stack
this session started is brought down at the end, so ``make test`` leaves no process behind
(``TESTBED_KEEP_STACK=1`` keeps it running, for faster re-runs while developing).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from testbed.context import RenderContext
from testbed.native.control import NativeStack, StackError


def _all_healthy(stack: NativeStack) -> bool:
    return all(item.health == "healthy" for item in stack.status().values())


@pytest.fixture(scope="session")
def native_stack() -> Iterator[RenderContext]:
    try:
        stack = NativeStack()
        reused = stack.client.is_running() and _all_healthy(stack)
        if not reused:
            stack.up()
    except StackError as exc:
        pytest.fail(f"native stack did not come up: {exc}\n{exc.detail}", pytrace=False)
    yield stack.ctx
    if not reused and os.environ.get("TESTBED_KEEP_STACK") != "1":
        stack.down()
