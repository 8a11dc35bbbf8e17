"""Chaos Toolkit probes of the testbed: what the observability stack and the shop say right now.

Probes return plain values that an experiment's tolerance judges (a bool, a number, a range).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from chaoslib.exceptions import ActivityFailed

from testbed import backend as backends
from testbed.access import StackAccess

Configuration = dict[str, Any] | None
Secrets = dict[str, Any] | None

HEALTHY_STATES = {"healthy", "none"}  # compose: "none" = running, no healthcheck

# Only probes an experiment uses live here: an unused probe is untested code. The runner reads
# Prometheus, Elasticsearch and the alerts itself (testbed/scenario/collect.py), failing closed.
__all__ = [
    "component_healthy",
    "gateway_success_ratio",
]


def _component_health(configuration: Configuration) -> dict[str, str]:
    try:
        return {name: c.health for name, c in backends.from_configuration(configuration).status().items()}
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
