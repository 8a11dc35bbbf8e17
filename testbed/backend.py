"""The stack backends behind one interface (compare httpx's ``BaseTransport``): native and compose.

The CLI, the chaos extension and the scenario runner talk to a ``Backend`` and never ask which one it
is; ``named()`` is the only place that maps a backend's name to its implementation
(``testbed.native.backend``: supervisord; ``testbed.deploy.backend``: docker compose).
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from testbed.access import StackAccess
    from testbed.context import RenderContext

BACKENDS = ("native", "compose")
BackendName = Literal["native", "compose"]
Phase = Literal["waiting", "starting", "healthy", "failed", "already running"]
EventCallback = Callable[[str, Phase, str], None]
# Health words meaning "not serving" (native: unhealthy/stopped; compose: a failing healthcheck).
NOT_SERVING = ("unhealthy", "stopped")


class StackError(RuntimeError):
    """One clear line naming the fix; ``detail`` may hold log lines worth showing."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


def no_event(_name: str, _phase: Phase, _detail: str) -> None:
    """The default listener: progress is not shown."""


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    state: str  # the backend's state name (supervisord: RUNNING, STOPPED, ...; compose: running, exited...)
    health: str  # native: healthy | unhealthy | stopped; compose: healthy | unhealthy | starting | none...
    pid: int | None
    url: str | None
    ports: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "health": self.health,
            "pid": self.pid,
            "url": self.url,
            "ports": self.ports,
        }


class Backend(abc.ABC):
    """One stack, driven through its own control plane. Failures raise ``StackError``."""

    name: ClassVar[BackendName]
    # What to run when this backend's stack is not up (shown with the error).
    up_hint: ClassVar[str]
    # Appended to an `up` failure: what became of the stack.
    up_failure_note: ClassVar[str] = ""

    def problem(self) -> str | None:
        """Why this backend cannot run on this machine at all (None: it can)."""
        return None

    @abc.abstractmethod
    def plan(self, names: Sequence[str]) -> list[str]:
        """The components `up` starts for ``names``, in order, for progress display ([]: not told)."""

    @abc.abstractmethod
    def up(self, names: Sequence[str] = (), on_event: EventCallback = no_event) -> None:
        """Start everything (or ``names`` and what they need) and wait until healthy."""

    @abc.abstractmethod
    def ensure_up(self, on_start: Callable[[list[str]], None]) -> None:
        """Bring the stack up unless it already serves; ``on_start`` hears what was not healthy."""

    @abc.abstractmethod
    def down(self) -> None: ...

    @abc.abstractmethod
    def start(self, name: str) -> None:
        """Start one component and wait until the backend reports it started (native: healthy)."""

    @abc.abstractmethod
    def stop(self, name: str) -> None: ...

    @abc.abstractmethod
    def kill(self, name: str) -> None:
        """SIGKILL one component, as a crash would; it stays down until started."""

    @abc.abstractmethod
    def status(self) -> dict[str, ComponentStatus]: ...

    @abc.abstractmethod
    def context(self) -> RenderContext:
        """The stack as its host sees it: ports, secrets, CA."""

    def access(self) -> StackAccess:
        from testbed.access import StackAccess

        return StackAccess(self.context())


def named(name: str) -> Backend:
    """The backend called ``name``; ``ValueError`` naming the choices for any other name."""
    if name == "native":
        from testbed.native.backend import NativeBackend

        return NativeBackend()
    if name == "compose":
        from testbed.deploy.backend import ComposeBackend

        return ComposeBackend()
    raise ValueError(f"--backend {name!r}: choose one of {', '.join(BACKENDS)}")


def from_configuration(configuration: dict[str, Any] | None = None) -> Backend:
    """Chaos Toolkit's ``testbed_backend`` configuration key, else ``TESTBED_BACKEND``, else native."""
    chosen = str(
        (configuration or {}).get("testbed_backend") or os.environ.get("TESTBED_BACKEND") or "native"
    )
    if chosen not in BACKENDS:
        raise ValueError(f"testbed_backend={chosen!r}: use native or compose")
    return named(chosen)
