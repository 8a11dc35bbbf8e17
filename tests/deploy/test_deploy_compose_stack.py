"""The compose stack, brought up by pytest-docker: every container healthy, secured, wired together.

Needs a Docker engine with the compose plugin (and registry access to pull the images). Without an
engine the whole module is reported as skipped with the reason; with one, a missing compose CLI fails.
It runs the same steps as `testbed up --backend compose`, with stack/compose.endpoints.yaml, every
published port shifted by +5000 (a native stack on this machine keeps its own), its own project name
and .env.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from testbed.deploy.compose import (
    COMPOSE_FILE,
    ENDPOINTS_FILE,
    UP_STEPS,
    compose_cli,
    engine_problem,
)
from testbed.deploy.envfile import port_variable, render_env

PORT_SHIFT = 5000


# Skipped only where no Docker engine answers (this project's machines). With an engine, a missing compose
# CLI or any failure to come up is a failure, not a skip: nothing here may hide a broken stack.
_REASON = engine_problem()
pytestmark = [
    pytest.mark.compose,
    pytest.mark.slow,
    pytest.mark.skipif(_REASON is not None, reason=f"compose stack not tested: {_REASON}"),
]


@pytest.fixture(scope="session")
def compose_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = render_env()
    for key in [key for key in env if key.startswith("PORT_")]:
        env[key] = str(int(env[key]) + PORT_SHIFT)
    return env


@pytest.fixture(scope="session")
def compose_env_file(compose_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compose") / ".env"
    # Compose interpolates each container's own secrets from this file (--env-file), not from stack/.env.
    path.write_text("".join(f"{key}={value}\n" for key, value in compose_env.items()))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def docker_compose_file() -> list[str]:
    # With the endpoints override: the round trip below reaches the gateway and Elasticsearch.
    return [str(COMPOSE_FILE), str(ENDPOINTS_FILE)]


@pytest.fixture(scope="session")
def docker_setup(compose_env_file: Path) -> list[str]:
    """The same steps as `testbed up --backend compose` (testbed.deploy.compose.UP_STEPS)."""
    return [f'--env-file "{compose_env_file}" ' + " ".join(step) for step in UP_STEPS]


@pytest.fixture(scope="session")
def docker_cleanup(compose_env_file: Path) -> list[str]:
    return [f'--env-file "{compose_env_file}" --profile setup down --volumes --remove-orphans']


@pytest.fixture(scope="session")
def stack(
    docker_services: Any,
    docker_compose_file: list[str],
    docker_compose_project_name: str,
    compose_env_file: Path,
) -> list[dict[str, Any]]:
    """`docker compose ps` of the running project (pytest-docker has run testbed's up steps)."""
    del docker_services
    command = _compose(docker_compose_file, docker_compose_project_name, compose_env_file)
    result = subprocess.run(
        [*command, "ps", "--all", "--format", "json"], capture_output=True, text=True, check=True
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
    stack_ca: ssl.SSLContext, compose_env: dict[str, str]
) -> None:
    assert httpx.get(_url(compose_env, "prometheus", "/-/healthy"), verify=stack_ca).status_code == 401
    response = httpx.get(
        _url(compose_env, "prometheus", "/api/v1/query"),
        params={"query": "up == 0"},
        auth=("testbed", compose_env["PROMETHEUS_PASSWORD"]),
        verify=stack_ca,
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


def _compose(files: list[str], project: str, env_file: Path) -> list[str]:
    return [
        *compose_cli(),
        *(arg for f in files for arg in ("-f", f)),
        "-p",
        project,
        "--env-file",
        str(env_file),
    ]


@pytest.fixture(scope="session")
def stack_ca(
    stack: object, docker_compose_file: list[str], docker_compose_project_name: str, compose_env_file: Path
) -> ssl.SSLContext:
    """The stack's CA, copied out of the pki volume as `testbed up` does."""
    target = compose_env_file.with_name("ca.crt")
    command = _compose(docker_compose_file, docker_compose_project_name, compose_env_file)
    subprocess.run([*command, "cp", "prepare:/testbed/pki/ca.crt", str(target)], check=True)
    return ssl.create_default_context(cafile=str(target))


def test_a_request_is_logged_by_every_service_and_searchable(
    stack_ca: ssl.SSLContext, compose_env: dict[str, str]
) -> None:
    """docker-elk's sentinel round trip through the whole compose pipeline: gateway -> services -> ECS
    files -> Logstash -> Elasticsearch, read back as logs_reader over TLS with the stack's own CA."""
    request_id = f"compose-rt-{uuid.uuid4().hex[:12]}"
    response = httpx.post(
        f"http://127.0.0.1:{compose_env['PORT_GATEWAY']}/orders",
        json={"product_id": "kettle", "quantity": 1},
        headers={"x-request-id": request_id},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    wanted = {"gateway", "inventory", "orders", "payments"}
    seen: set[str] = set()
    deadline = time.monotonic() + 120
    auth = ("logs_reader", compose_env["LOGS_READER_PASSWORD"])
    with httpx.Client(verify=stack_ca, auth=auth, timeout=10) as client:
        while not wanted <= seen and time.monotonic() < deadline:
            found = client.post(
                f"https://127.0.0.1:{compose_env['PORT_ELASTICSEARCH']}/logs-testbed-*/_search",
                json={"query": {"term": {"transaction.id": request_id}}, "size": 100},
            )
            if found.status_code == 200:
                seen |= {hit["_source"]["service"]["name"] for hit in found.json()["hits"]["hits"]}
            time.sleep(1)
    assert wanted <= seen, f"services seen: {sorted(seen)}"
