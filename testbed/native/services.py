"""The services under test as components of the native stack (the testbed's side of the corridor).

What each service is (ports, database, queues, dependencies) is its declaration
(``services/<name>/service.yaml``, read by ``services.registry``); this module turns those into
supervised components.

Each instance of each service is one supervised process (group ``services``): the venv's python running
``python -m services.<name>`` (uvicorn inside), configured only through ``SHOP_*`` environment variables
built from the render context. Each service connects with its own PostgreSQL role, which owns the
service's database and is refused on the others' (``provision_stores``: PostgreSQL's ``post_start``);
the service applies its own migrations at start (idempotent). Component names: the first instance is
the service name (``gateway``), further ones get their index (``gateway-1``).
"""

from __future__ import annotations

import asyncio
import sys

from services.common.db import Store, provision
from services.registry import registry
from testbed.context import RenderContext
from testbed.native.component import Component, HealthCheck

# Start order and dependencies come from each service's declaration (services/<name>/service.yaml).
SERVICES: dict[str, tuple[str, ...]] = {spec.name: spec.depends_on for spec in registry().values()}
DATABASES = {spec.name: spec.name for spec in registry().values() if spec.database}


def stores(ctx: RenderContext) -> dict[str, Store]:
    """Each service's database and its own login role (named after the service): see services/common/db.py."""
    return {
        service: Store(database, service, db_password(ctx, service))
        for service, database in DATABASES.items()
    }


def db_password(ctx: RenderContext, service: str) -> str:
    """The service's role password: the ``<service>_db_password`` secret (testbed/secrets.py)."""
    password = getattr(ctx.secrets, f"{service}_db_password", None)
    if not isinstance(password, str):
        # A service declaring `database: true` needs its secret field; say which, not AttributeError.
        raise LookupError(
            f"services/{service}/service.yaml declares a database: "
            f"add {service}_db_password to testbed/secrets.py"
        )
    return password


def admin_dsn(ctx: RenderContext) -> str:
    """The server's admin credential: provisioning only, never given to a service."""
    return f"postgresql://testbed:{ctx.secrets.postgres_password}@{ctx.address('postgresql')}/postgres"


def provision_stores(ctx: RenderContext) -> None:
    """PostgreSQL's ``post_start`` (and compose's ``databases`` job): roles and databases, idempotent."""
    asyncio.run(provision(admin_dsn(ctx), stores(ctx)))


AMQP_CLIENTS = frozenset(spec.name for spec in registry().values() if spec.amqp)


def component_name(service: str, instance: int) -> str:
    return registry()[service].component_name(instance)


def history_file(ctx: RenderContext) -> str:
    return str(ctx.data_dir / "alert_sink" / "alerts.jsonl")


def environment(ctx: RenderContext, service: str, instance: int) -> dict[str, str]:
    """The ``SHOP_*`` settings of one instance (see services/common/settings.py and each service's app)."""
    env = {
        "SHOP_SERVICE_NAME": service,
        "SHOP_INSTANCE": str(instance),
        "SHOP_HOST": ctx.host(service),
        "SHOP_PORT": str(ctx.port(service, instance)),
        "SHOP_LOG_DIR": str(ctx.services_log_dir),
        "SHOP_FAULT_ADMIN_TOKEN": ctx.secrets.fault_admin_token,
        "PYTHONUNBUFFERED": "1",
    }
    if service in DATABASES:
        store = stores(ctx)[service]
        env["SHOP_DATABASE_URL"] = (
            f"postgresql://{store.role}:{store.password}@{ctx.address('postgresql')}/{store.database}"
        )
    if service in AMQP_CLIENTS:
        env["SHOP_AMQP_URL"] = f"amqp://testbed:{ctx.secrets.rabbitmq_password}@{ctx.address('rabbitmq')}/"
    for dependency in SERVICES[service]:
        if dependency in SERVICES:  # another service: its URL (the gateway's SHOP_INVENTORY_URL)
            env[f"SHOP_{dependency.upper()}_URL"] = f"http://{ctx.address(dependency)}"
    if registry()[service].role == "alert_receiver":  # where it records, what Alertmanager sends
        env["SHOP_HISTORY_FILE"] = history_file(ctx)
        env["SHOP_WEBHOOK_PASSWORD"] = ctx.secrets.alert_sink_password
    return env


def components(ctx: RenderContext) -> list[Component]:
    """Every service instance (and the alert sink) as a supervised, health-gated component."""
    result = []
    for service, depends_on in SERVICES.items():
        for instance in range(len(ctx.ports[service])):
            address = ctx.address(service, instance)
            result.append(
                Component(
                    name=component_name(service, instance),
                    command=[sys.executable, "-m", f"services.{service}"],
                    port_names=(service,),
                    port_instance=instance,
                    # Ready, not just alive: its own database and broker are reachable.
                    health=HealthCheck("http", f"http://{address}/readyz", timeout_s=60),
                    depends_on=depends_on,
                    environment=environment(ctx, service, instance),
                    stop_signal="TERM",  # uvicorn finishes in-flight requests, consumers stop acking
                    stop_wait_s=20,
                    url=f"http://{address}",
                    group="services",
                )
            )
    return result
