"""How the chaos extension reaches one stack: URLs, credentials and the component backend.

Everything is derived from the testbed contract (ports, state dir, secrets, CA), so the same
experiment file drives the main stack or a second one (``TESTBED_STATE_DIR``/``TESTBED_PORT_OFFSET``)
and the native or compose backend (configuration key ``testbed_backend``, env ``TESTBED_BACKEND``).
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import httpx

from testbed.context import RenderContext

Backend = Literal["native", "compose"]

# The services' fault-injection admin route and the alert sink's history route (services area).
FAULT_ADMIN_PATH = "/admin/faults"
ALERT_SINK_HISTORY_PATH = "/alerts"


def backend_from(configuration: dict[str, Any] | None) -> Backend:
    chosen = str(
        (configuration or {}).get("testbed_backend") or os.environ.get("TESTBED_BACKEND") or "native"
    )
    if chosen not in ("native", "compose"):
        raise ValueError(f"testbed_backend={chosen!r}: use native or compose")
    return chosen  # type: ignore[return-value]


@dataclass(frozen=True)
class StackAccess:
    ctx: RenderContext

    @classmethod
    def current(cls, backend: Backend | None = None) -> StackAccess:
        """The stack of ``backend`` (default: ``TESTBED_BACKEND``, else native)."""
        if (backend or backend_from(None)) == "compose":
            # Published ports on 127.0.0.1, secrets from stack/.env, the CA exported by `up`.
            from testbed.deploy.compose import host_context

            return cls(host_context())
        return cls(RenderContext.native())

    @cached_property
    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ctx.ca_cert))

    def _tls_client(self, user: str, password: str, timeout_s: float) -> httpx.Client:
        return httpx.Client(auth=(user, password), verify=self._tls, timeout=timeout_s)

    def prometheus(self, timeout_s: float = 10.0) -> tuple[httpx.Client, str]:
        client = self._tls_client("testbed", self.ctx.secrets.prometheus_password, timeout_s)
        return client, f"https://127.0.0.1:{self.ctx.port('prometheus')}"

    def alertmanager(self, timeout_s: float = 10.0) -> tuple[httpx.Client, str]:
        client = self._tls_client("testbed", self.ctx.secrets.alertmanager_password, timeout_s)
        return client, f"https://127.0.0.1:{self.ctx.port('alertmanager')}"

    def elasticsearch(self, timeout_s: float = 10.0) -> tuple[httpx.Client, str]:
        client = self._tls_client("elastic", self.ctx.secrets.elastic_password, timeout_s)
        return client, f"https://127.0.0.1:{self.ctx.port('elasticsearch')}"

    def service_url(self, service: str, instance: int = 0) -> str:
        return f"http://127.0.0.1:{self.ctx.port(service, instance)}"

    def fault_admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.ctx.secrets.fault_admin_token}"}
