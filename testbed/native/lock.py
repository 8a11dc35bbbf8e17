"""One `up`/`down` at a time per stack: an flock in the stack's supervisor directory."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from testbed.native.errors import EventCallback, no_event


class StackLock:
    """Exclusive across processes (two test sessions, a person and a test...); re-entrant in one holder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._depth = 0

    @contextlib.contextmanager
    def hold(self, on_event: EventCallback = no_event) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                on_event("supervisord", "waiting", "another up/down of this stack is running")
                fcntl.flock(handle, fcntl.LOCK_EX)
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0
                fcntl.flock(handle, fcntl.LOCK_UN)
