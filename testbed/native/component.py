"""One supervised process of the native stack, as the stack definition declares it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from testbed.context import RenderContext

HealthKind = Literal["http", "https", "tcp", "command"]


@dataclass(frozen=True)
class HealthCheck:
    """How ``testbed up`` knows a component is ready.

    ``http``/``https``: GET ``target`` (a URL) succeeds with a status in ``ok_status``; ``https`` verifies
    against the stack CA and may use basic auth (``auth`` = (user, password)). ``tcp``: ``target`` is
    ``host:port`` and accepts a connection. ``command``: ``target`` is a shell command that exits 0.
    """

    kind: HealthKind
    target: str
    auth: tuple[str, str] | None = None
    ok_status: tuple[int, ...] = (200,)
    timeout_s: float = 120.0


@dataclass(frozen=True)
class Component:
    """A process under supervisord.

    ``render`` writes the component's config files into the state dir before it starts (idempotent).
    ``post_start`` runs once the component is healthy (idempotent: applying templates, creating users,
    databases...). ``depends_on`` names components that must be healthy first.
    """

    name: str
    command: Sequence[str]
    port_names: Sequence[str] = ()
    port_instance: int = 0  # which entry of a multi-instance port list (gateway-1: 1)
    health: HealthCheck | None = None
    depends_on: Sequence[str] = ()
    environment: dict[str, str] = field(default_factory=dict)
    directory: str | None = None
    run_as_stack_user: bool = True
    stop_signal: str = "TERM"
    stop_wait_s: int = 30
    url: str | None = None
    group: str = "infra"  # "infra", "services", "jobs": lets tests and chaos address a set
    render: Callable[[RenderContext], None] | None = None
    post_start: Callable[[RenderContext], None] | None = None
