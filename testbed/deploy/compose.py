"""The compose backend: ``docker compose -f stack/compose.yaml`` behind the testbed's own verbs.

Every verb first makes sure a compose CLI and a Docker engine are there, and otherwise raises
``ComposeUnavailable`` with one line saying what to install or start.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from services import registry
from testbed import settings
from testbed.context import RenderContext
from testbed.deploy.envfile import ENV_FILE, PUBLISHED_PORTS, read_env, secrets_from_env

COMPOSE_FILE = settings.STACK_DIR / "compose.yaml"
# Publishes the endpoints the testbed's own tools use (tests, scenarios, chaos) on 127.0.0.1.
ENDPOINTS_FILE = settings.STACK_DIR / "compose.endpoints.yaml"
ENDPOINTS_SWITCH = "TESTBED_COMPOSE_ENDPOINTS"
# `up` starts the setup job too (it is behind this profile so a plain `docker compose up` does not).
SETUP_PROFILE = "setup"
UP_TIMEOUT_S = 900


# Native component name (`testbed status`) -> the compose service doing the same job, so chaos
# experiments and scenarios address components by one name on both backends. Components without an
# equivalent: epmd (inside the rabbitmq container) and the Curator job (ILM/SLM do it in compose).
COMPONENT_SERVICES: dict[str, str] = {
    "elasticsearch": "elasticsearch",
    "prometheus": "prometheus",
    "alertmanager": "alertmanager",
    "node_exporter": "node-exporter",
    "postgres_exporter": "postgres-exporter",
    "elasticsearch_exporter": "elasticsearch-exporter",
    "blackbox_exporter": "blackbox-exporter",
    "postgresql": "postgres",
    "rabbitmq": "rabbitmq",
    "rsyslog": "logstash",  # the log shipper
    **registry.compose_names(),  # every service instance (component gateway-1 is compose's gateway-2)
}
NO_COMPOSE_EQUIVALENT = ("epmd",)
# Status keys: the native name wherever there is one (the shipper keeps its own name, logstash).
_STATUS_NAMES = {service: name for name, service in COMPONENT_SERVICES.items() if name != "rsyslog"}


def service_names(names: Sequence[str]) -> list[str]:
    """Compose services for native component names (compose service names pass through)."""
    result = []
    for name in names:
        if name in NO_COMPOSE_EQUIVALENT:
            raise ComposeUnavailable(f"{name} has no container of its own in the compose stack")
        result.append(COMPONENT_SERVICES.get(name, name))
    return result


class ComposeUnavailable(RuntimeError):
    """No compose CLI or no reachable Docker engine; the message names the fix."""


@cache
def compose_cli() -> tuple[str, ...]:
    """``docker compose`` (v2 plugin) or, failing that, a standalone ``docker-compose`` v2."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return (docker, "compose")
    standalone = shutil.which("docker-compose")
    if standalone:
        version = subprocess.run([standalone, "version", "--short"], capture_output=True, text=True)
        if version.returncode == 0 and version.stdout.strip().lstrip("v").startswith("2"):
            return (standalone,)
    raise ComposeUnavailable(
        "no Docker Compose v2 CLI: install the docker compose plugin (docker-compose-plugin) and retry"
    )


def engine_problem() -> str | None:
    """Why no Docker engine can be used, or None when one answers."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker CLI on PATH: install Docker and retry"
    result = subprocess.run(
        [docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
    )
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"no Docker engine reachable ({detail}): start Docker or set DOCKER_HOST, then retry"
    return None


def _require_engine() -> tuple[str, ...]:
    problem = engine_problem()
    if problem:
        raise ComposeUnavailable(problem)
    cli = compose_cli()
    if not ENV_FILE.exists():
        raise ComposeUnavailable(f"{ENV_FILE} is missing: run `testbed init` first")
    return cli


def compose_files() -> list[Path]:
    with_endpoints = os.environ.get(ENDPOINTS_SWITCH, "") not in ("", "0")
    return [COMPOSE_FILE, ENDPOINTS_FILE] if with_endpoints else [COMPOSE_FILE]


def compose_args(*args: str) -> list[str]:
    files = [arg for path in compose_files() for arg in ("-f", str(path))]
    return [*files, "--project-directory", str(settings.STACK_DIR), *args]


def _run(args: Sequence[str], capture: bool = False, timeout: float | None = None) -> str:
    cli = _require_engine()
    result = subprocess.run(
        [*cli, *compose_args(*args)], capture_output=capture, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        detail = " ".join((result.stderr or "").strip().splitlines()[-1:]) if capture else ""
        raise RuntimeError(f"docker compose {' '.join(args)} failed (exit {result.returncode}) {detail}")
    return result.stdout or ""


# `up --wait` counts a one-shot container that exits as a failure unless a running service waits for it
# (service_completed_successfully), and Kibana cannot be healthy before setup set kibana_system's
# password: so the setup job runs in two synchronous steps around the second `up`.
UP_STEPS: tuple[tuple[str, ...], ...] = (
    ("up", "--detach", "--build", "--wait", "elasticsearch"),
    ("--profile", SETUP_PROFILE, "run", "--rm", "setup", "testbed", "compose-setup", "apply"),
    ("up", "--detach", "--wait"),
    ("--profile", SETUP_PROFILE, "run", "--rm", "setup", "testbed", "compose-setup", "kibana"),
)


def up(services: Sequence[str] = ()) -> None:
    """Build the project image, prepare, set up, start everything and wait until healthy.

    With ``services``: only start those (and their dependencies), waiting until healthy.
    """
    if services:
        _run(["up", "--detach", "--wait", *service_names(services)], timeout=UP_TIMEOUT_S)
        return
    for step in UP_STEPS:
        _run(list(step), timeout=UP_TIMEOUT_S)
    export_ca()


def host_state_dir() -> Path:
    """Where the host keeps what it needs to talk to the compose stack (its CA)."""
    return settings.state_dir() / "compose"


def export_ca() -> Path:
    """Copy the stack's CA certificate out of the pki volume, for host-side clients."""
    target = host_context().ca_cert
    target.parent.mkdir(parents=True, exist_ok=True)
    _run(["cp", "prepare:/testbed/pki/ca.crt", str(target)])
    return target


def host_context(env_file: Path = ENV_FILE) -> RenderContext:
    """The compose stack as seen from the host: 127.0.0.1, the published ports, stack/.env's secrets.

    Scenarios and chaos use it on ``--backend compose`` instead of ``RenderContext.native()``; the
    services and Elasticsearch are published only with ``TESTBED_COMPOSE_ENDPOINTS=1``.
    """
    env = read_env(env_file)
    if not env:
        raise ComposeUnavailable(f"{env_file} is missing: run `testbed init` first")
    from testbed.deploy.runtime import COMPOSE_HOSTS

    # Everything the compose stack runs is reached on loopback from the host (published ports).
    return RenderContext(
        mode="compose",
        state_dir=host_state_dir(),
        ports=settings.ports(),
        secrets=secrets_from_env(env),
        hosts=dict.fromkeys(COMPOSE_HOSTS, "127.0.0.1"),
    )


def down(volumes: bool = False) -> None:
    _run(["--profile", SETUP_PROFILE, "down", "--remove-orphans", *(["--volumes"] if volumes else [])])


def stop(services: Sequence[str] = ()) -> None:
    _run(["stop", *service_names(services)])


def start(services: Sequence[str] = ()) -> None:
    _run(["start", *service_names(services)])


def kill(services: Sequence[str] = (), signal: str = "KILL") -> None:
    _run(["kill", "--signal", signal, *service_names(services)])


def _ui_url(service: str) -> str | None:
    # Published UIs answer on the host; everything else only inside the compose network.
    name = service.replace("-", "_")
    if name not in PUBLISHED_PORTS:
        return None
    scheme = "https" if name in ("prometheus", "alertmanager") else "http"
    return f"{scheme}://127.0.0.1:{settings.port(name)}"


def status_from_ps(lines: str) -> dict[str, Any]:
    """``docker compose ps --format json`` (one object per line, or one array) as the status JSON."""
    text = lines.strip()
    entries: list[dict[str, Any]] = []
    if text.startswith("["):
        entries = json.loads(text)
    elif text:
        entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    components: dict[str, dict[str, Any]] = {}
    for entry in entries:
        service = entry.get("Service") or entry.get("Name", "?")
        components[_STATUS_NAMES.get(service, service)] = {
            "state": entry.get("State", "unknown"),
            "health": entry.get("Health") or ("none" if entry.get("State") == "running" else "unknown"),
            "pid": None,
            "url": _ui_url(service),
        }
    return {"components": components}


def status() -> dict[str, Any]:
    return status_from_ps(_run(["ps", "--all", "--format", "json"], capture=True))
