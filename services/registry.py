"""The services under test, discovered from their folders: a folder holding ``service.yaml`` is a service.

Each declaration (``services/<name>/service.yaml``) is read into :class:`ServiceSpec`; everything that
lists services (native components, ports, scrape jobs, OpenAPI documents, compose hosts, chaos targets)
derives from :func:`registry`. A malformed declaration fails with one line naming the file and field.
This module belongs to the system under test: it imports nothing from ``testbed``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SERVICES_ROOT = Path(__file__).resolve().parent
DECLARATION = "service.yaml"
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewayRoute(_Strict):
    """A route the gateway exposes on this service's behalf."""

    method: Literal["GET", "POST", "PUT", "DELETE", "PATCH"]
    path: str = Field(pattern=r"^/")
    # The gateway is not ready while a service behind a critical route is not.
    critical: bool = False


class Queues(_Strict):
    """Routing keys this service consumes and publishes (services/common/messages.py)."""

    consumes: tuple[str, ...] = ()
    publishes: tuple[str, ...] = ()


class LoadFlow(_Strict):
    """The Locust flow (load/locustfile.py) that exercises this service, and its default weight."""

    flow: str = Field(pattern=NAME_PATTERN)
    weight: int = Field(ge=0)


class ServiceSpec(_Strict):
    """One service's declaration."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    # One base port per instance (TESTBED_PORT_OFFSET and TESTBED_PORT_<NAME> apply as to stack/ports.yaml).
    ports: tuple[int, ...] = Field(min_length=1)
    # Its own PostgreSQL database and login role, both named after the service.
    database: bool = False
    queues: Queues = Queues()
    # Started after these (infrastructure components or other services); a service dependency also
    # gives it SHOP_<DEPENDENCY>_URL.
    depends_on: tuple[str, ...] = ()
    gateway_routes: tuple[GatewayRoute, ...] = ()
    # Names of its SLOs in stack/slo.yaml (empty: none).
    slos: tuple[str, ...] = ()
    load: LoadFlow | None = None
    # Offered to the generic chaos experiments (`--target <service>`).
    chaos_target: bool = True
    # `alert_receiver`: the testbed's own webhook receiver (Alertmanager posts to it, scenarios read
    # its history for alert assertions); every other service is part of the shop under test.
    role: Literal["shop", "alert_receiver"] = "shop"

    @model_validator(mode="after")
    def _ports_in_range(self) -> ServiceSpec:
        for port in self.ports:
            if not 1024 <= port <= 65535:
                raise ValueError(f"port {port} is outside 1024-65535")
        return self

    @property
    def instances(self) -> int:
        return len(self.ports)

    @property
    def amqp(self) -> bool:
        return bool(self.queues.consumes or self.queues.publishes)

    @property
    def compose_name(self) -> str:
        """The compose service of instance 0 (compose names use dashes)."""
        return self.name.replace("_", "-")

    def component_name(self, instance: int) -> str:
        """The native component of one instance: ``gateway``, ``gateway-1``."""
        return self.name if instance == 0 else f"{self.name}-{instance}"

    def compose_instance_name(self, instance: int) -> str:
        """Compose names of further instances count from 2 (``gateway-2`` is instance 1)."""
        return self.compose_name if instance == 0 else f"{self.compose_name}-{instance + 1}"


class DeclarationError(ValueError):
    """A service declaration that cannot be used; the message names the file and the field."""


def _describe(path: Path, error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return f"{path}: {field}: {first['msg']}"


def load_spec(path: Path) -> ServiceSpec:
    """Read one declaration; its ``name`` must be its folder's name."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DeclarationError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise DeclarationError(f"{path}: expected a mapping at the top level")
    try:
        spec = ServiceSpec.model_validate(data)
    except ValidationError as exc:
        raise DeclarationError(_describe(path, exc)) from None
    if spec.name != path.parent.name:
        raise DeclarationError(f"{path}: name: {spec.name!r} differs from its folder {path.parent.name!r}")
    return spec


def discover(root: Path = SERVICES_ROOT) -> dict[str, ServiceSpec]:
    """Every declared service under ``root``, in start order (dependencies first, then by name)."""
    specs = {spec.name: spec for spec in (load_spec(p) for p in sorted(root.glob(f"*/{DECLARATION}")))}
    return _start_order(specs)


def _start_order(specs: dict[str, ServiceSpec]) -> dict[str, ServiceSpec]:
    ordered: dict[str, ServiceSpec] = {}
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name in visiting:
            raise DeclarationError(f"services/{name}/{DECLARATION}: depends_on: a cycle through {name!r}")
        visiting.add(name)
        for dependency in specs[name].depends_on:
            if dependency in specs:  # others are infrastructure components
                visit(dependency)
        visiting.discard(name)
        ordered[name] = specs[name]

    for name in specs:
        visit(name)
    return ordered


@cache
def registry() -> dict[str, ServiceSpec]:
    """The services of this repository (cached: the folders do not change while a process runs)."""
    return discover()


def names() -> tuple[str, ...]:
    return tuple(registry())


def spec(name: str) -> ServiceSpec:
    try:
        return registry()[name]
    except KeyError:
        known = ", ".join(registry())
        raise KeyError(f"no service named {name!r} (declared: {known})") from None


def compose_names() -> dict[str, str]:
    """Native component of each instance -> the compose service running it (gateway-1 -> gateway-2)."""
    return {
        service.component_name(instance): service.compose_instance_name(instance)
        for service in registry().values()
        for instance in range(service.instances)
    }


def valid_name(name: str) -> bool:
    return re.fullmatch(NAME_PATTERN, name) is not None
