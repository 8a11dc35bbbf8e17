"""The compose stack, brought up by pytest-docker: every container healthy, secured, wired together.

Needs a Docker engine with the compose plugin (and registry access to pull the images); without one the
whole module is reported as skipped with the reason. Published UI ports are shifted by +5000 so a native
stack on this machine keeps its own.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from testbed.deploy.compose import UP_STEPS, ComposeUnavailable, compose_cli, engine_problem
from testbed.deploy.envfile import PUBLISHED_PORTS, port_variable, render_env

PORT_SHIFT = 5000


def _unavailable() -> str | None:
    problem = engine_problem()
    if problem:
        return problem
    try:
        compose_cli()
    except ComposeUnavailable as exc:
        return str(exc)
    return None


_REASON = _unavailable()
pytestmark = [
    pytest.mark.compose,
    pytest.mark.slow,
    pytest.mark.skipif(_REASON is not None, reason=f"compose stack not tested: {_REASON}"),
]


@pytest.fixture(scope="session")
def compose_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = render_env()
    for name in PUBLISHED_PORTS:
        env[port_variable(name)] = str(int(env[port_variable(name)]) + PORT_SHIFT)
    return env


@pytest.fixture(scope="session")
def compose_env_file(compose_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compose") / ".env"
    # TESTBED_ENV_FILE: the containers read their secrets from this file too, not from stack/.env.
    env = {**compose_env, "TESTBED_ENV_FILE": str(path)}
    path.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(Path(__file__).resolve().parents[2] / "stack" / "compose.yaml")


@pytest.fixture(scope="session")
def docker_setup(compose_env_file: Path) -> list[str]:
    """The same steps as `testbed up --backend compose` (testbed.deploy.compose.UP_STEPS)."""
    return [f'--env-file "{compose_env_file}" ' + " ".join(step) for step in UP_STEPS]


@pytest.fixture(scope="session")
def docker_cleanup(compose_env_file: Path) -> list[str]:
    return [f'--env-file "{compose_env_file}" --profile setup down --volumes --remove-orphans']


@pytest.fixture(scope="session")
def stack(docker_services: Any, docker_compose_file: str, compose_env_file: Path) -> list[dict[str, Any]]:
    """`docker compose ps` of the running project (pytest-docker has waited for --wait)."""
    del docker_services
    result = subprocess.run(
        [
            *compose_cli(),
            "-f",
            docker_compose_file,
            "--env-file",
            str(compose_env_file),
            "ps",
            "--all",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    text = result.stdout.strip()
    return json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()]


def _url(env: dict[str, str], name: str, path: str) -> str:
    scheme = "https" if name in ("prometheus", "alertmanager") else "http"
    return f"{scheme}://127.0.0.1:{env[port_variable(name)]}{path}"


def test_every_long_running_container_is_healthy_and_jobs_succeeded(stack: list[dict[str, Any]]) -> None:
    for entry in stack:
        if entry["Service"] in ("prepare", "setup"):
            assert entry["State"] == "exited" and entry.get("ExitCode", 0) == 0, entry
        else:
            assert entry["State"] == "running" and entry.get("Health") == "healthy", entry


def test_prometheus_requires_auth_and_scrapes_every_target(
    stack: object, compose_env: dict[str, str]
) -> None:
    assert httpx.get(_url(compose_env, "prometheus", "/-/healthy"), verify=False).status_code == 401
    response = httpx.get(
        _url(compose_env, "prometheus", "/api/v1/query"),
        params={"query": "up == 0"},
        auth=("testbed", compose_env["PROMETHEUS_PASSWORD"]),
        verify=False,  # the stack's own CA lives in a volume; TLS itself is what is checked here
    )
    assert response.status_code == 200
    assert response.json()["data"]["result"] == [], "some scrape targets are down"


def test_kibana_is_available_to_the_superuser_only(stack: object, compose_env: dict[str, str]) -> None:
    url = _url(compose_env, "kibana", "/api/status")
    assert httpx.get(url).status_code == 401
    status = httpx.get(url, auth=("elastic", compose_env["ELASTIC_PASSWORD"])).json()
    assert status["status"]["overall"]["level"] == "available"


def test_grafana_refuses_anonymous_and_default_admin(stack: object, compose_env: dict[str, str]) -> None:
    url = _url(compose_env, "grafana", "/api/dashboards/home")
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, auth=("admin", "admin")).status_code == 401
    assert httpx.get(url, auth=("admin", compose_env["GRAFANA_ADMIN_PASSWORD"])).status_code == 200
