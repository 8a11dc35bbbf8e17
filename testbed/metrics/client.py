"""Talk to the stack's Prometheus and Alertmanager over TLS (stack CA) with basic auth."""

from __future__ import annotations

import ssl

import httpx
import requests
from prometheus_api_client import PrometheusConnect

from testbed.context import RenderContext
from testbed.metrics.scrape import STACK_USER


def _tls(ctx: RenderContext) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ctx.ca_cert))


def prometheus_url(ctx: RenderContext) -> str:
    return f"https://{ctx.address('prometheus')}"


def alertmanager_url(ctx: RenderContext) -> str:
    return f"https://{ctx.address('alertmanager')}"


def prometheus_client(ctx: RenderContext, timeout_s: float = 30.0) -> httpx.Client:
    return httpx.Client(
        base_url=prometheus_url(ctx),
        verify=_tls(ctx),
        auth=(STACK_USER, ctx.secrets.prometheus_password),
        timeout=timeout_s,
    )


def alertmanager_client(ctx: RenderContext, timeout_s: float = 30.0) -> httpx.Client:
    return httpx.Client(
        base_url=alertmanager_url(ctx),
        verify=_tls(ctx),
        auth=(STACK_USER, ctx.secrets.alertmanager_password),
        timeout=timeout_s,
    )


def prometheus_api(ctx: RenderContext, timeout_s: int = 30) -> PrometheusConnect:
    """prometheus-api-client's PrometheusConnect, verifying against the stack CA."""
    session = requests.Session()
    session.verify = str(ctx.ca_cert)
    return PrometheusConnect(
        url=prometheus_url(ctx),
        auth=(STACK_USER, ctx.secrets.prometheus_password),
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
    httpx.post(f"http://{ctx.address('blackbox_exporter')}/-/reload", timeout=30).raise_for_status()
