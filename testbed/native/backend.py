"""The native backend: the stack under supervisord on this machine (``testbed.native.control``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from testbed.backend import Backend, ComponentStatus, EventCallback, StackError, no_event
from testbed.context import RenderContext
from testbed.native.control import NativeStack


class NativeBackend(Backend):
    name = "native"
    up_hint = "run `testbed up`"
    up_failure_note = " (the stack was stopped; data kept)"

    def __init__(self, stack: NativeStack | None = None) -> None:
        self._stack = stack

    @property
    def stack(self) -> NativeStack:
        """Built on first use: the stack definition imports every area's renderers."""
        if self._stack is None:
            try:
                self._stack = NativeStack()
            except (ValueError, KeyError) as exc:  # a bad port override or state dir: one line
                raise StackError(str(exc)) from None
        return self._stack

    def plan(self, names: Sequence[str]) -> list[str]:
        """The components `up` starts for ``names`` (all when empty), in start order."""
        wanted = self.stack.closure(list(names)) if names else None
        return [c.name for c in self.stack.components if wanted is None or c.name in wanted]

    def up(self, names: Sequence[str] = (), on_event: EventCallback = no_event) -> None:
        self.stack.up(on_event, list(names) or None)

    def ensure_up(self, on_start: Callable[[list[str]], None]) -> None:
        unhealthy = [name for name, s in self.stack.status().items() if s.health != "healthy"]
        if unhealthy:
            on_start(unhealthy)
            self.stack.up()

    def down(self) -> None:
        self.stack.down()

    def start(self, name: str) -> None:
        self.stack.start(name)

    def stop(self, name: str) -> None:
        self.stack.stop(name)

    def kill(self, name: str) -> None:
        self.stack.kill(name)

    def status(self) -> dict[str, ComponentStatus]:
        return self.stack.status()

    def context(self) -> RenderContext:
        # Without building the stack definition: chaos probes and the runner need only the context.
        return self._stack.ctx if self._stack is not None else RenderContext.native()
