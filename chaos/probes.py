"""Chaos Toolkit probes of the testbed: what the observability stack and the shop say right now.

Probes return plain values that an experiment's tolerance judges (a bool, a number, a range).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from chaoslib.exceptions import ActivityFailed

from chaos.stack_access import ALERT_SINK_HISTORY_PATH, StackAccess, backend_from

Configuration = dict[str, Any] | None
Secrets = dict[str, Any] | None

LOG_INDEX_PATTERN = "logs-testbed-*"
HEALTHY_STATES = {"healthy", "none"}  # compose: "none" = running, no healthcheck

__all__ = [
    "alert_firing",
    "alert_sink_count",
    "component_healthy",
    "es_log_count",
    "gateway_success_ratio",
    "prometheus_value",
]


def prometheus_value(query: str, configuration: Configuration = None, secrets: Secrets = None) -> float:
    """The first sample of an instant PromQL query (0.0 when the result is empty)."""
    client, base = StackAccess.current().prometheus()
    with client:
        try:
            response = client.get(f"{base}/api/v1/query", params={"query": query})
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise ActivityFailed(f"Prometheus query {query!r}: {exc}") from exc
    result = response.json()["data"]["result"]
    if not result:
        return 0.0
    return float(result[0]["value"][1])


def alert_firing(name: str, configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """Whether Prometheus has the alert ``name`` firing now."""
    return prometheus_value(f'count(ALERTS{{alertname="{name}",alertstate="firing"}})', configuration) > 0


def es_log_count(
    query: str = "*", since_s: int = 300, configuration: Configuration = None, secrets: Secrets = None
) -> int:
    """Log events matching a Lucene ``query`` in the last ``since_s`` seconds (refreshes first)."""
    client, base = StackAccess.current().elasticsearch()
    body = {
        "query": {
            "bool": {
                "filter": [
                    {"query_string": {"query": query}},
                    {"range": {"@timestamp": {"gte": f"now-{since_s}s"}}},
                ]
            }
        }
    }
    with client:
        try:
            client.post(f"{base}/{LOG_INDEX_PATTERN}/_refresh", params={"ignore_unavailable": "true"})
            response = client.post(
                f"{base}/{LOG_INDEX_PATTERN}/_count", json=body, params={"ignore_unavailable": "true"}
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise ActivityFailed(f"Elasticsearch count {query!r}: {exc}") from exc
    return int(response.json()["count"])


def alert_sink_count(
    name: str,
    state: str = "firing",
    since_s: int = 600,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> int:
    """Notifications of alert ``name`` in ``state`` the alert sink received in the last ``since_s``."""
    access = StackAccess.current()
    url = access.service_url("alert_sink") + ALERT_SINK_HISTORY_PATH
    params = {"name": name, "state": state, "since": f"{time.time() - since_s:.3f}"}
    try:
        response = httpx.get(url, params=params, timeout=10.0)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise ActivityFailed(f"alert sink {url}: {exc}") from exc
    payload = response.json()
    items = payload.get("alerts", payload) if isinstance(payload, dict) else payload
    return len(items)


def _component_health(configuration: Configuration) -> dict[str, str]:
    try:
        if backend_from(configuration) == "compose":
            from testbed.deploy import compose

            return {name: str(c.get("health")) for name, c in compose.status()["components"].items()}
        from testbed.native import control

        return {name: c.health for name, c in control.status().items()}
    except Exception as exc:  # the backend's own errors: the probe cannot answer
        raise ActivityFailed(f"component status unavailable: {exc}") from exc


def component_healthy(
    name: str, within_s: float = 0.0, configuration: Configuration = None, secrets: Secrets = None
) -> bool:
    """Whether the component reports healthy, polling up to ``within_s`` seconds for it to become so."""
    deadline = time.monotonic() + within_s
    while True:
        if _component_health(configuration).get(name, "").lower() in HEALTHY_STATES:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(2.0)


def gateway_success_ratio(
    path: str = "/catalog", requests: int = 10, configuration: Configuration = None, secrets: Secrets = None
) -> float:
    """Share of ``requests`` probe GETs to the gateway answered below 500 (deterministic probe traffic)."""
    url = StackAccess.current().service_url("gateway") + path
    good = 0
    with httpx.Client(timeout=5.0) as client:
        for _ in range(requests):
            # Tagged probe traffic: the verifier and dashboards can tell it from Locust's.
            headers = {"X-Request-ID": f"chaos-probe-{uuid.uuid4().hex}", "User-Agent": "testbed-chaos-probe"}
            try:
                if client.get(url, headers=headers).status_code < 500:
                    good += 1
            except httpx.HTTPError:
                pass
    return good / requests
