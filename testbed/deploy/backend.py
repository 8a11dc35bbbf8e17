"""The compose backend: ``docker compose`` verbs (``testbed.deploy.compose``) behind the Backend interface.

Components are addressed by their native names (``compose.COMPONENT_SERVICES`` maps them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from testbed.backend import Backend, ComponentStatus, EventCallback, StackError, no_event
from testbed.context import RenderContext
from testbed.deploy import compose


def _call[T](action: Callable[[], T]) -> T:
    """compose's own errors (no engine, a failed docker compose command) as the backends' one line."""
    try:
        return action()
    except (compose.ComposeUnavailable, RuntimeError) as exc:
        if isinstance(exc, StackError):
            raise
        raise StackError(str(exc)) from None


class ComposeBackend(Backend):
    name = "compose"
    up_hint = "run `testbed up --backend compose`"

    def problem(self) -> str | None:
        return compose.engine_problem()

    def plan(self, names: Sequence[str]) -> list[str]:
        return []  # docker compose reports no per-component progress

    def up(self, names: Sequence[str] = (), on_event: EventCallback = no_event) -> None:
        _call(lambda: compose.up(list(names)))

    def ensure_up(self, on_start: Callable[[list[str]], None]) -> None:
        # `docker compose up --wait` leaves healthy containers alone: always run it.
        _call(compose.up)

    def down(self) -> None:
        _call(lambda: compose.down(False))

    def start(self, name: str) -> None:
        _call(lambda: compose.start([name]))

    def stop(self, name: str) -> None:
        _call(lambda: compose.stop([name]))

    def kill(self, name: str) -> None:
        _call(lambda: compose.kill([name]))

    def status(self) -> dict[str, ComponentStatus]:
        components = _call(compose.status)["components"]
        return {
            name: ComponentStatus(
                name=name,
                state=str(item["state"]),
                health=str(item["health"]),
                pid=item["pid"],
                url=item["url"],
                ports={},
            )
            for name, item in components.items()
        }

    def context(self) -> RenderContext:
        # Published ports on 127.0.0.1, secrets from stack/.env, the CA exported by `up`.
        return _call(compose.host_context)
