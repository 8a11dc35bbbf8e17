"""How the testbed's own tools reach one stack: every endpoint declared once (URL, user, secret, CA).

`testbed env`, the components' health checks, the smoke checks, the log and metrics clients, the
scenario runner and the chaos probes all derive their URLs and credentials from here, so a port,
user or secret field is changed in one place. Server-side renderers (web configs, security files)
read the same users.

``StackAccess`` is one stack as the host sees it (native, or compose through its published ports).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import cached_property

import httpx

from testbed.context import RenderContext

# The user Prometheus/Alertmanager basic auth, PostgreSQL (superuser) and RabbitMQ accept.
STACK_USER = "testbed"

# The services' fault-injection admin route and the alert sink's history route (services area).
FAULT_ADMIN_PATH = "/admin/faults"
ALERT_SINK_HISTORY_PATH = "/alerts"


@dataclass(frozen=True)
class Credential:
    user: str
    secret: str  # the field of testbed.secrets.Secrets holding the password

    def password(self, ctx: RenderContext) -> str:
        return str(getattr(ctx.secrets, self.secret))

    def pair(self, ctx: RenderContext) -> tuple[str, str]:
        return self.user, self.password(ctx)


@dataclass(frozen=True)
class Endpoint:
    """One network endpoint of the stack: its port name (stack/ports.yaml), scheme and default login."""

    port: str
    scheme: str
    credential: Credential | None = None

    @property
    def tls(self) -> bool:
        """Served over TLS with a certificate of the stack's CA (``ctx.ca_cert``)."""
        return self.scheme == "https"

    def url(self, ctx: RenderContext, path: str = "", instance: int = 0) -> str:
        return f"{self.scheme}://{ctx.address(self.port, instance)}{path}"

    def url_with_login(self, ctx: RenderContext, path: str = "") -> str:
        """For clients that take the login in the URL (DSNs, AMQP): never put one on a command line."""
        assert self.credential is not None, f"{self.port} has no login"
        user, password = self.credential.pair(ctx)
        return f"{self.scheme}://{user}:{password}@{ctx.address(self.port)}{path}"

    def auth(self, ctx: RenderContext) -> tuple[str, str] | None:
        return self.credential.pair(ctx) if self.credential else None


ELASTIC_SUPERUSER = Credential("elastic", "elastic_password")
ELASTICSEARCH = Endpoint("elasticsearch", "https", ELASTIC_SUPERUSER)
PROMETHEUS = Endpoint("prometheus", "https", Credential(STACK_USER, "prometheus_password"))
ALERTMANAGER = Endpoint("alertmanager", "https", Credential(STACK_USER, "alertmanager_password"))
POSTGRESQL = Endpoint("postgresql", "postgresql", Credential(STACK_USER, "postgres_password"))
RABBITMQ = Endpoint("rabbitmq", "amqp", Credential(STACK_USER, "rabbitmq_password"))
RABBITMQ_PROMETHEUS = Endpoint("rabbitmq_prometheus", "http")
NODE_EXPORTER = Endpoint("node_exporter", "http")
POSTGRES_EXPORTER = Endpoint("postgres_exporter", "http")
ELASTICSEARCH_EXPORTER = Endpoint("elasticsearch_exporter", "http")
BLACKBOX_EXPORTER = Endpoint("blackbox_exporter", "http")

# The logs area's Elasticsearch users (stack/elasticsearch security files), least privilege first.
LOGS_READER = Credential("logs_reader", "logs_reader_password")
LOGS_WRITER = Credential("logs_writer", "logs_writer_password")
LOGS_ADMIN = Credential("logs_admin", "logs_admin_password")


def tls_context(ctx: RenderContext) -> ssl.SSLContext:
    """Verifies the stack's servers against its own CA."""
    return ssl.create_default_context(cafile=str(ctx.ca_cert))


def http_client(
    ctx: RenderContext, endpoint: Endpoint, timeout_s: float, base_url: bool = True
) -> httpx.Client:
    """An httpx client logged in as the endpoint's user, verifying against the stack CA when on TLS."""
    return httpx.Client(
        base_url=endpoint.url(ctx) if base_url else "",
        auth=endpoint.auth(ctx),
        verify=tls_context(ctx) if endpoint.tls else True,
        timeout=timeout_s,
    )


@dataclass(frozen=True)
class StackAccess:
    """One stack as its host sees it: clients and URLs for the runner, chaos probes and tests."""

    ctx: RenderContext

    @classmethod
    def current(cls, backend: str | None = None) -> StackAccess:
        """The stack of ``backend`` (default: ``TESTBED_BACKEND``, else native)."""
        from testbed import backend as backends

        return (backends.named(backend) if backend else backends.from_configuration(None)).access()

    @cached_property
    def _tls(self) -> ssl.SSLContext:
        return tls_context(self.ctx)

    def _client(self, endpoint: Endpoint, timeout_s: float) -> tuple[httpx.Client, str]:
        client = httpx.Client(auth=endpoint.auth(self.ctx), verify=self._tls, timeout=timeout_s)
        return client, endpoint.url(self.ctx)

    def prometheus(self, timeout_s: float = 10.0) -> tuple[httpx.Client, str]:
        return self._client(PROMETHEUS, timeout_s)

    def alertmanager(self, timeout_s: float = 10.0) -> tuple[httpx.Client, str]:
        return self._client(ALERTMANAGER, timeout_s)

    def elasticsearch(self, timeout_s: float = 10.0) -> tuple[httpx.Client, str]:
        return self._client(ELASTICSEARCH, timeout_s)

    def service_url(self, service: str, instance: int = 0) -> str:
        return Endpoint(service, "http").url(self.ctx, instance=instance)

    def fault_admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.ctx.secrets.fault_admin_token}"}
