"""The services under test as components of the native stack (filled in by the services area)."""

from __future__ import annotations

from testbed.context import RenderContext
from testbed.native.component import Component


def components(ctx: RenderContext) -> list[Component]:
    """Every service instance (and the alert sink) as a supervised, health-gated component."""
    return []
