"""Drive the native stack: up, down, status and per-component control.

The Python API behind the ``testbed`` commands, for chaos actions and tests as well::

    from testbed.native import control
    control.up(); control.kill("rabbitmq"); control.start("rabbitmq"); control.down()

Failures raise ``StackError`` with one line naming the fix (and, for a component that did not get
healthy, its last log lines in ``detail``).

This module is the facade; the pieces live beside it: ``prepare`` (install check, state dir, renders),
``supervision`` (supervisord's lifecycle and clean-up), ``startup`` (dependency order, health gating),
``status``, ``lock`` (one up/down at a time), ``processes`` (OS processes, ports, log tails) and
``environment`` (`testbed env`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from testbed.context import RenderContext
from testbed.native import prepare as preparation
from testbed.native import stack as stack_definition
from testbed.native import status as status_report
from testbed.native import supervision
from testbed.native import supervisor as sv
from testbed.native.component import Component
from testbed.native.environment import tool_environment
from testbed.native.errors import EventCallback, Phase, StackError, no_event
from testbed.native.lock import StackLock
from testbed.native.processes import stack_processes, tail
from testbed.native.startup import CREDENTIALS_GRACE_S, DEAD_STATES, Starter
from testbed.native.status import ComponentStatus

# Re-exported: callers (CLI, chaos, tests, bench) import these from here.
__all__ = [
    "CREDENTIALS_GRACE_S",
    "ComponentStatus",
    "EventCallback",
    "NativeStack",
    "Phase",
    "StackError",
    "down",
    "kill",
    "restart",
    "stack_processes",
    "start",
    "status",
    "stop",
    "tail",
    "up",
]


class NativeStack:
    """One stack: its context (state dir, ports, secrets), its components and its supervisord."""

    def __init__(self, ctx: RenderContext | None = None, components: list[Component] | None = None) -> None:
        self.ctx = ctx or RenderContext.native()
        self.components = components if components is not None else stack_definition.components(self.ctx)
        self.by_name = {c.name: c for c in self.components}
        self.client = sv.SupervisorClient(self.ctx)
        self.starter = Starter(self.ctx, self.client, self.ports_of)
        self._lock = StackLock(sv.supervisor_dir(self.ctx))
        self._check_dependencies()

    def exclusive(self, on_event: EventCallback = no_event) -> contextlib.AbstractContextManager[None]:
        """One `up`/`down` at a time per stack (two test sessions, a person and a test...)."""
        return self._lock.hold(on_event)

    # --- definition ---------------------------------------------------------------------------

    def _check_dependencies(self) -> None:
        for component in self.components:
            for dependency in component.depends_on:
                if dependency not in self.by_name:
                    raise StackError(
                        f"{component.name} depends on unknown component {dependency!r}: fix stack.py"
                    )
        seen: set[str] = set()
        remaining = list(self.components)
        while remaining:
            ready = [c for c in remaining if set(c.depends_on) <= seen]
            if not ready:
                names = ", ".join(c.name for c in remaining)
                raise StackError(f"dependency cycle among {names}: fix depends_on in stack.py")
            seen.update(c.name for c in ready)
            remaining = [c for c in remaining if c.name not in seen]

    def component(self, name: str) -> Component:
        try:
            return self.by_name[name]
        except KeyError:
            known = ", ".join(sorted(self.by_name))
            raise StackError(f"no component named {name!r}: pick one of {known}") from None

    def ports_of(self, component: Component) -> dict[str, int]:
        return {name: self.ctx.port(name, component.port_instance) for name in component.port_names}

    def closure(self, names: list[str]) -> set[str]:
        """``names`` and everything they depend on, transitively."""
        wanted: set[str] = set()
        todo = [self.component(n).name for n in names]
        while todo:
            name = todo.pop()
            if name not in wanted:
                wanted.add(name)
                todo.extend(self.by_name[name].depends_on)
        return wanted

    # --- preparing ----------------------------------------------------------------------------

    def check_installed(self) -> None:
        """Fail with the fix when `testbed setup` has not been run (or did not finish)."""
        preparation.check_installed(self.components)

    def config_fingerprint(self, name: str) -> str:
        return preparation.config_fingerprint(self.ctx, name)

    def prepare(self) -> set[str]:
        """Directories, PKI, every component's config and supervisord.conf (idempotent).

        Returns the components whose rendered config files changed (`up` restarts them if running).
        """
        self.check_installed()
        return preparation.render_all(self.ctx, self.components)

    # --- supervisord --------------------------------------------------------------------------

    def recover_stale(self, on_event: EventCallback = no_event) -> None:
        supervision.recover_stale(self.ctx, on_event)

    def ensure_supervisord(self, on_event: EventCallback = no_event) -> None:
        supervision.ensure_running(self.ctx, self.client, on_event)

    def require_supervisord(self) -> None:
        supervision.require_running(self.client)

    # --- up and down --------------------------------------------------------------------------

    def up(self, on_event: EventCallback = no_event, names: list[str] | None = None) -> None:
        """Start every component (or ``names`` and what they need) in dependency order, gated on health.

        Idempotent: healthy components are left alone. On a failure or Ctrl-C the stack is stopped.
        """
        with self.exclusive(on_event):
            if not self.client.is_running():
                self._up_from_nothing(on_event, names)
                return
            changed = self.prepare()  # a failure here has started nothing: a running stack is left alone
            try:
                self.ensure_supervisord(on_event)
                self._restart_changed(changed, names, on_event)
                self.starter.start_in_order(self._targets(names), on_event)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.down()
                raise

    def _targets(self, names: list[str] | None) -> list[Component]:
        only = self.closure(names) if names else None
        return [c for c in self.components if only is None or c.name in only]

    def _up_from_nothing(self, on_event: EventCallback, names: list[str] | None) -> None:
        """No supervisord, so nothing of the stack runs: each component starts as soon as its own render
        (and its dependencies) are done, while the slower renders still run (the first start used to
        wait for the slowest render, Elasticsearch's keystore JVM, before starting anything)."""
        self.check_installed()
        preparation.lay_out(self.ctx, self.components)
        renders = preparation.Renders(self.ctx, self.components)
        try:
            self.ensure_supervisord(on_event)
            self.starter.start_in_order(self._targets(names), on_event, renders)
            renders.changed()  # a render of a component outside ``names`` must not fail unseen
        except BaseException:
            renders.close()
            with contextlib.suppress(Exception):
                self.down()
            raise
        renders.close()

    def _restart_changed(self, changed: set[str], names: list[str] | None, on_event: EventCallback) -> None:
        """A running component whose config files this render changed is stopped, so `up` starts it anew."""
        wanted = self.closure(names) if names else set(self.by_name)
        info = self.client.process_info()
        for name in sorted(changed & wanted):
            if info.get(name, {}).get("statename") == "RUNNING":
                on_event(name, "starting", "config changed: restarting")
                self.client.stop(name)

    def down(self) -> None:
        """Stop every component and supervisord; then make sure no process of the stack is left."""
        with self.exclusive():
            supervision.shut_down(self.ctx, self.client)

    # --- status and one component -------------------------------------------------------------

    def status(self) -> dict[str, ComponentStatus]:
        """Every component; STALE when supervisord is gone but processes it started still run."""
        return status_report.collect(
            self.ctx, self.client, self.components, self.starter.probe, self.ports_of
        )

    def wait_healthy(self, name: str) -> None:
        self.starter.wait_healthy(self.component(name), no_event)

    def start(self, name: str, wait: bool = True) -> None:
        component = self.component(name)
        self.require_supervisord()
        self.starter.launch(component)
        if wait:
            self.wait_healthy(name)

    def stop(self, name: str) -> None:
        self.component(name)
        self.require_supervisord()
        self.client.stop(name)

    def kill(self, name: str) -> None:
        """SIGKILL the component's whole process group, as a crash would (supervisord does not restart it)."""
        self.component(name)
        self.require_supervisord()
        pid = self.client.process_info().get(name, {}).get("pid") or 0
        if not pid:
            raise StackError(f"{name} is not running: nothing to kill")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.client.process_info().get(name, {}).get("statename") in DEAD_STATES:
                return
            time.sleep(0.1)

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    def log_path(self, name: str) -> Path:
        self.component(name)
        return sv.component_log(self.ctx, name)

    def follow_log(self, name: str, lines: int) -> Iterator[str]:
        path = self.log_path(name)
        yield from tail(path, lines)
        position = path.stat().st_size if path.exists() else 0
        while True:
            if path.exists():
                size = path.stat().st_size
                if size < position:  # rotated
                    position = 0
                if size > position:
                    with path.open("rb") as fh:
                        fh.seek(position)
                        chunk = fh.read()
                    position += len(chunk)
                    yield from chunk.decode(errors="replace").splitlines()
            time.sleep(0.5)

    def environment(self) -> dict[str, str]:
        """What `testbed env` exports: URLs, the CA, credentials (names are the stable contract)."""
        return tool_environment(self.ctx)


# --- module-level API (one stack per process environment) -----------------------------------------


def _stack() -> NativeStack:
    return NativeStack()


def up(on_event: EventCallback = no_event) -> RenderContext:
    stack = _stack()
    stack.up(on_event)
    return stack.ctx


def down() -> None:
    _stack().down()


def status() -> dict[str, ComponentStatus]:
    return _stack().status()


def start(name: str) -> None:
    _stack().start(name)


def stop(name: str) -> None:
    _stack().stop(name)


def kill(name: str) -> None:
    _stack().kill(name)


def restart(name: str) -> None:
    _stack().restart(name)
