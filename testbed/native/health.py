"""Health checks of components: is it ready to serve?"""

from __future__ import annotations

import socket
import ssl
import subprocess
from pathlib import Path

import httpx

from testbed.native.component import HealthCheck

PROBE_TIMEOUT_S = 5.0


def tls_context(ca_cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_cert))


def probe(check: HealthCheck, ca_cert: Path) -> tuple[bool, str]:
    """One attempt: (healthy, what was seen)."""
    try:
        if check.kind in ("http", "https"):
            verify: ssl.SSLContext | bool = tls_context(ca_cert) if check.kind == "https" else True
            response = httpx.get(check.target, auth=check.auth, verify=verify, timeout=PROBE_TIMEOUT_S)
            return response.status_code in check.ok_status, f"HTTP {response.status_code}"
        if check.kind == "tcp":
            host, _, port = check.target.rpartition(":")
            with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S):
                return True, "accepting connections"
        if check.kind == "command":
            result = subprocess.run(
                check.target, shell=True, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
            )
            return result.returncode == 0, f"exit {result.returncode}"
    except (httpx.HTTPError, OSError, subprocess.TimeoutExpired, ssl.SSLError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return False, f"unknown health check kind {check.kind!r}"
