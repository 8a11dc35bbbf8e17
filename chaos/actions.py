"""Chaos Toolkit actions of the testbed: stop/start/kill components, switch the services' fault flags.

Each function takes plain arguments plus Chaos Toolkit's ``configuration``/``secrets``. Components are
addressed by their stack name (``testbed status --json``); the backend (native supervisor or docker
compose) comes from the configuration, so one experiment file serves both.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from chaoslib.exceptions import ActivityFailed

from testbed import backend as backends
from testbed.access import FAULT_ADMIN_PATH, StackAccess

Configuration = dict[str, Any] | None
Secrets = dict[str, Any] | None

__all__ = [
    "clear_fault",
    "kill_component",
    "restart_component",
    "set_fault",
    "start_component",
    "stop_component",
]


def _control(configuration: Configuration, verb: str, name: str) -> None:
    """Run one verb through the configured backend's own control API (native supervisor or docker compose)."""
    backend = backends.from_configuration(configuration)
    try:
        getattr(backend, verb)(name)
    except Exception as exc:  # the backend's own errors: report them as the activity failing
        # Starting a started component (a rollback after the method already restarted it) is fine.
        if verb == "start" and "ALREADY_STARTED" in str(exc).upper().replace(" ", "_"):
            return
        raise ActivityFailed(f"{backend.name} {verb} {name}: {exc}") from exc


def stop_component(name: str, configuration: Configuration = None, secrets: Secrets = None) -> str:
    """Stop a component cleanly; it stays down until started."""
    _control(configuration, "stop", name)
    return f"stopped {name}"


def start_component(name: str, configuration: Configuration = None, secrets: Secrets = None) -> str:
    """Start a component (waits until the backend reports it started)."""
    _control(configuration, "start", name)
    return f"started {name}"


def kill_component(
    name: str, keep_down: bool = True, configuration: Configuration = None, secrets: Secrets = None
) -> str:
    """SIGKILL a component, as a crash would; it stays down unless ``keep_down`` is false (then restarted)."""
    _control(configuration, "kill", name)
    if not keep_down:
        start_component(name, configuration)
    return f"killed {name}" + ("" if keep_down else " and started it again")


def restart_component(
    name: str, down_s: float = 0.0, configuration: Configuration = None, secrets: Secrets = None
) -> str:
    """Stop, stay down ``down_s`` seconds, start again."""
    stop_component(name, configuration)
    time.sleep(down_s)
    start_component(name, configuration)
    return f"restarted {name} after {down_s:g} s down"


def set_fault(
    service: str,
    instance: int = 0,
    error_rate: float = 0.0,
    latency_ms: int = 0,
    blackhole: list[str] | None = None,
    ttl_s: int = 300,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Switch a service's fault flags through its token-protected admin endpoint (they expire after ttl_s)."""
    body = {"error_rate": error_rate, "latency_ms": latency_ms, "blackhole": blackhole or [], "ttl_s": ttl_s}
    return _fault_admin("PUT", service, instance, body)


def clear_fault(
    service: str, instance: int = 0, configuration: Configuration = None, secrets: Secrets = None
) -> dict[str, Any]:
    """Remove every fault flag of a service instance."""
    return _fault_admin("DELETE", service, instance, None)


def _fault_admin(method: str, service: str, instance: int, body: dict[str, Any] | None) -> dict[str, Any]:
    access = StackAccess.current()
    url = access.service_url(service, instance) + FAULT_ADMIN_PATH
    try:
        response = httpx.request(method, url, json=body, headers=access.fault_admin_headers(), timeout=10.0)
    except httpx.HTTPError as exc:
        raise ActivityFailed(f"{service}: fault admin endpoint unreachable at {url}: {exc}") from exc
    if response.status_code >= 400:
        raise ActivityFailed(f"{method} {url}: HTTP {response.status_code} {response.text[:200]}")
    return response.json() if response.content else {}
