"""Chaos Toolkit actions of the testbed: stop/start/kill components, switch the services' fault flags.

Each function takes plain arguments plus Chaos Toolkit's ``configuration``/``secrets``. Components are
addressed by their stack name (``testbed status --json``); the backend (native supervisor or docker
compose) comes from the configuration, so one experiment file serves both.
"""

from __future__ import annotations

import importlib
import subprocess
import time
from typing import Any

import httpx
from chaoslib.exceptions import ActivityFailed

from chaos.stack_access import FAULT_ADMIN_PATH, StackAccess, backend_from
from testbed.settings import REPO_ROOT

Configuration = dict[str, Any] | None
Secrets = dict[str, Any] | None

COMPOSE_FILE = REPO_ROOT / "stack" / "compose.yaml"

__all__ = [
    "clear_fault",
    "kill_component",
    "restart_component",
    "set_fault",
    "start_component",
    "stop_component",
]


def _native(verb: str, name: str) -> None:
    try:
        control = importlib.import_module("testbed.native.control")
    except ImportError as exc:
        raise ActivityFailed(
            "testbed.native.control is missing: the native backend is not installed"
        ) from exc
    try:
        getattr(control, verb)(name)
    except Exception as exc:  # the control API's own errors: report them as the activity failing
        # Starting a started component (a rollback after the method already restarted it) is fine.
        if verb == "start" and "ALREADY_STARTED" in str(exc).upper().replace(" ", "_"):
            return
        raise ActivityFailed(f"native {verb} {name}: {exc}") from exc


def _compose(args: list[str]) -> None:
    command = ["docker", "compose", "-f", str(COMPOSE_FILE), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise ActivityFailed(f"{' '.join(command)} failed: {done.stderr.strip()[-300:]}")


def stop_component(name: str, configuration: Configuration = None, secrets: Secrets = None) -> str:
    """Stop a component cleanly; it stays down until started."""
    if backend_from(configuration) == "compose":
        _compose(["stop", name])
    else:
        _native("stop", name)
    return f"stopped {name}"


def start_component(name: str, configuration: Configuration = None, secrets: Secrets = None) -> str:
    """Start a component (waits until the backend reports it started)."""
    if backend_from(configuration) == "compose":
        _compose(["start", name])
    else:
        _native("start", name)
    return f"started {name}"


def kill_component(
    name: str, keep_down: bool = True, configuration: Configuration = None, secrets: Secrets = None
) -> str:
    """SIGKILL a component, as a crash would; it stays down unless ``keep_down`` is false (then restarted)."""
    if backend_from(configuration) == "compose":
        _compose(["kill", "-s", "SIGKILL", name])
    else:
        _native("kill", name)
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
