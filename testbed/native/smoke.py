"""Smoke checks: each infrastructure component does its job for a real client, with the stack's credentials.

Stronger than the health checks `up` gates on: a query to PostgreSQL, an AMQP login, a PromQL query,
an Alertmanager API call, exporters exposing their own metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import aio_pika
import asyncpg
import httpx

from testbed import access
from testbed.context import RenderContext

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class SmokeResult:
    component: str
    ok: bool
    detail: str


def _get(ctx: RenderContext, endpoint: access.Endpoint, path: str) -> httpx.Response:
    return httpx.get(
        endpoint.url(ctx, path), auth=endpoint.auth(ctx), verify=access.tls_context(ctx), timeout=TIMEOUT_S
    )


def elasticsearch(ctx: RenderContext) -> str:
    response = _get(ctx, access.ELASTICSEARCH, "/_cluster/health")
    response.raise_for_status()
    return f"cluster {response.json()['status']}"


def prometheus(ctx: RenderContext) -> str:
    response = _get(ctx, access.PROMETHEUS, "/api/v1/query?query=up")
    response.raise_for_status()
    return f"PromQL `up`: {len(response.json()['data']['result'])} series"


def alertmanager(ctx: RenderContext) -> str:
    response = _get(ctx, access.ALERTMANAGER, "/api/v2/status")
    response.raise_for_status()
    return f"cluster {response.json()['cluster']['status']}"


def _exporter(port_name: str, metric_prefix: str) -> Callable[[RenderContext], str]:
    def check(ctx: RenderContext) -> str:
        response = _get(ctx, access.Endpoint(port_name, "http"), "/metrics")
        response.raise_for_status()
        count = sum(1 for line in response.text.splitlines() if line.startswith(metric_prefix))
        if not count:
            raise RuntimeError(f"no {metric_prefix}* metric")
        return f"{count} {metric_prefix}* samples"

    return check


def postgresql(ctx: RenderContext) -> str:
    user, password = access.POSTGRESQL.auth(ctx) or ("", "")

    async def query() -> str:
        connection = await asyncpg.connect(
            host="127.0.0.1",
            port=ctx.port("postgresql"),
            user=user,
            password=password,
            database="postgres",
            timeout=TIMEOUT_S,
        )
        try:
            return str(await connection.fetchval("SELECT version()"))
        finally:
            await connection.close()

    return asyncio.run(query()).split(" on ")[0]


def rabbitmq(ctx: RenderContext) -> str:
    async def login() -> str:
        connection = await aio_pika.connect(access.RABBITMQ.url_with_login(ctx, "/"), timeout=TIMEOUT_S)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            return f"AMQP login, declared {queue.name[:12]}…"
        finally:
            await connection.close()

    return asyncio.run(login())


CHECKS: dict[str, Callable[[RenderContext], str]] = {
    "elasticsearch": elasticsearch,
    "prometheus": prometheus,
    "alertmanager": alertmanager,
    "postgresql": postgresql,
    "rabbitmq": rabbitmq,
    "node_exporter": _exporter("node_exporter", "node_"),
    "postgres_exporter": _exporter("postgres_exporter", "pg_"),
    "elasticsearch_exporter": _exporter("elasticsearch_exporter", "elasticsearch_"),
    "blackbox_exporter": _exporter("blackbox_exporter", "blackbox_"),
    "rabbitmq_prometheus": _exporter("rabbitmq_prometheus", "rabbitmq_"),
}


def run_all(ctx: RenderContext) -> list[SmokeResult]:
    results = []
    for name, check in CHECKS.items():
        try:
            results.append(SmokeResult(name, True, check(ctx)))
        except Exception as exc:  # every failure is reported, none stops the others
            results.append(SmokeResult(name, False, f"{type(exc).__name__}: {exc}"[:200]))
    return results
