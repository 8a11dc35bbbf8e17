"""Inside the compose containers: the compose ``RenderContext`` and the services' entry point.

Each container built from the project's image receives only the secrets it reads (its ``environment:``
in stack/compose.yaml; the others read as ``withheld:`` markers). The context is rebuilt from that
environment; the services run the very command and environment declared for the native stack
(``testbed.native.services.components``), bound to all interfaces because other containers reach them
by service name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from services import registry
from testbed import settings
from testbed.context import RenderContext
from testbed.deploy.envfile import secrets_from_env
from testbed.metrics import render as metrics_render
from testbed.native.component import Component

# Mount point of the pki/config/service-logs volumes in every container that uses them.
COMPOSE_STATE_DIR = metrics_render.COMPOSE_STATE_DIR
# Host of each port name (stack/ports.yaml) in the compose network, i.e. the compose service names. The
# metrics area's map (which its committed compose renders use) is the base; "<name>-<instance>" keys
# name one instance of a multi-instance service.
COMPOSE_HOSTS: dict[str, str] = {
    **metrics_render.COMPOSE_HOSTS,
    "elasticsearch": "elasticsearch",
    "elasticsearch_transport": "elasticsearch",
    "postgresql": "postgres",
    "rabbitmq": "rabbitmq",
    "kibana": "kibana",
    "grafana": "grafana",
    "logstash": "logstash",
}


# Port names of the services under test (each instance is one container): their declarations.
SERVICE_NAMES = registry.names()


def compose_context(environ: Mapping[str, str] | None = None) -> RenderContext:
    environ = os.environ if environ is None else environ
    state = Path(environ.get("TESTBED_STATE_DIR", str(COMPOSE_STATE_DIR)))
    return RenderContext(
        mode="compose",
        state_dir=state,
        ports=settings.ports(),
        secrets=secrets_from_env(dict(environ), partial=True),
        hosts=dict(COMPOSE_HOSTS),
    )


def service_component(ctx: RenderContext, name: str, instance: int) -> Component:
    """The services area's component serving port ``name``/``instance`` (matched by that port)."""
    from testbed.native.services import components

    port = ctx.port(name, instance)
    for component in components(ctx):
        health_port = urlsplit(component.health.target).port if component.health else None
        if port in (health_port, _int_or_none(component.environment.get("SHOP_PORT"))):
            return component
    raise LookupError(f"the native services serve no {name} instance {instance} (port {port})")


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def exec_service(name: str, instance: int) -> None:
    """Replace this process with the service instance, listening on every interface of its container."""
    ctx = compose_context()
    component = service_component(ctx, name, instance)
    environment = {**os.environ, **component.environment, "SHOP_HOST": "0.0.0.0"}
    if component.directory:
        os.chdir(component.directory)
    command = list(component.command)
    os.execvpe(command[0], command, environment)


def health_url(name: str, instance: int) -> str:
    """The component's own health URL, pointed at this container's loopback."""
    ctx = compose_context()
    component = service_component(ctx, name, instance)
    if component.health is None or component.health.kind not in ("http", "https"):
        return f"http://127.0.0.1:{ctx.port(name, instance)}/healthz"
    target = urlsplit(component.health.target)
    return target._replace(netloc=f"127.0.0.1:{ctx.port(name, instance)}").geturl()
