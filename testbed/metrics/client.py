"""Talk to the stack's Prometheus and Alertmanager over TLS (stack CA) with basic auth."""

from __future__ import annotations

import httpx
import requests
from prometheus_api_client import PrometheusConnect

from testbed import access
from testbed.context import RenderContext

# Kept under this name: tests build their own clients with it.
_tls = access.tls_context


def prometheus_url(ctx: RenderContext) -> str:
    return access.PROMETHEUS.url(ctx)


def alertmanager_url(ctx: RenderContext) -> str:
    return access.ALERTMANAGER.url(ctx)


def prometheus_client(ctx: RenderContext, timeout_s: float = 30.0) -> httpx.Client:
    return access.http_client(ctx, access.PROMETHEUS, timeout_s)


def alertmanager_client(ctx: RenderContext, timeout_s: float = 30.0) -> httpx.Client:
    return access.http_client(ctx, access.ALERTMANAGER, timeout_s)


def prometheus_api(ctx: RenderContext, timeout_s: int = 30) -> PrometheusConnect:
    """prometheus-api-client's PrometheusConnect, verifying against the stack CA."""
    session = requests.Session()
    session.verify = str(ctx.ca_cert)
    return PrometheusConnect(
        url=prometheus_url(ctx),
        auth=access.PROMETHEUS.auth(ctx),
        session=session,
        timeout=timeout_s,
    )


def reload_running(ctx: RenderContext) -> None:
    """Ask the running Prometheus, Alertmanager and blackbox_exporter to re-read their rendered config."""
    for name, make_client in (("prometheus", prometheus_client), ("alertmanager", alertmanager_client)):
        with make_client(ctx) as client:
            response = client.post("/-/reload")
        if response.status_code != 200:
            raise httpx.HTTPStatusError(
                f"{name} refused to reload: {response.text}", request=response.request, response=response
            )
    httpx.post(access.BLACKBOX_EXPORTER.url(ctx, "/-/reload"), timeout=30).raise_for_status()
