"""What `prepare` makes, served by real Prometheus and Alertmanager processes (compose versions).

The compose containers' health checks authenticate with prepare's client configs against prepare's
web.yml over prepare's TLS certificates; here the same files drive short-lived local processes on free
loopback ports, and Alertmanager is probed with the very amtool command its compose healthcheck runs.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from testbed.deploy import setup
from testbed.deploy.envfile import render_env
from testbed.deploy.runtime import compose_context
from testbed.deploy.validate import load_compose
from testbed.native import builds

# The compose versions, as `testbed setup` builds them.
BINARIES = {name: builds.path(name) for name in ("prometheus", "alertmanager", "amtool", "promtool")}


@pytest.fixture(scope="module", autouse=True)
def _binaries_built() -> None:
    """A failure, not a skip: `make test` runs the set-up that builds them."""
    missing = [name for name, path in BINARIES.items() if not path.is_file()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not built: run `testbed setup`")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    state = tmp_path_factory.mktemp("compose-state")
    env = {**render_env(), "TESTBED_STATE_DIR": str(state)}
    setup.prepare(compose_context(env))
    return env, state


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode}"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listening on {port} after {timeout_s} s")


def _serve(command: list[str], port: int) -> Iterator[int]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def prometheus(prepared: tuple[dict[str, str], Path]) -> Iterator[int]:
    _, state = prepared
    config = state / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1m}\n")
    port = _free_port()
    command = [
        str(BINARIES["prometheus"]),
        f"--config.file={config}",
        f"--web.config.file={state / 'config/prometheus/web.yml'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.tsdb.path={state / 'prometheus-data'}",
    ]
    yield from _serve(command, port)


@pytest.fixture(scope="module")
def alertmanager(prepared: tuple[dict[str, str], Path]) -> Iterator[int]:
    _, state = prepared
    config = state / "alertmanager.yml"
    config.write_text("route: {receiver: none}\nreceivers: [{name: none}]\n")
    port = _free_port()
    command = [
        str(BINARIES["alertmanager"]),
        f"--config.file={config}",
        f"--web.config.file={state / 'config/alertmanager/web.yml'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.path={state / 'alertmanager-data'}",
        "--cluster.listen-address=",
    ]
    yield from _serve(command, port)


def test_web_configs_pass_promtool(prepared: tuple[dict[str, str], Path]) -> None:
    _, state = prepared
    for server in ("prometheus", "alertmanager"):
        web = state / "config" / server / "web.yml"
        result = subprocess.run(
            [str(BINARIES["promtool"]), "check", "web-config", str(web)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_serves_tls_and_refuses_without_the_password(
    prepared: tuple[dict[str, str], Path], prometheus: int
) -> None:
    _, state = prepared
    client = yaml.safe_load((state / "config/prometheus/client.yml").read_text())
    ca = ssl.create_default_context(cafile=client["tls_config"]["ca_file"])
    password = Path(client["basic_auth"]["password_file"]).read_text()
    url = f"https://localhost:{prometheus}/-/healthy"
    assert httpx.get(url, verify=ca).status_code == 401
    assert httpx.get(url, verify=ca, auth=("testbed", password + "x")).status_code == 401
    assert httpx.get(url, verify=ca, auth=(client["basic_auth"]["username"], password)).status_code == 200


def test_alertmanager_answers_its_compose_healthcheck_command(
    prepared: tuple[dict[str, str], Path], alertmanager: int
) -> None:
    """compose.yaml's own healthcheck argv, with only the paths and the port moved to this test."""
    _, state = prepared
    argv = load_compose(render_env())["services"]["alertmanager"]["healthcheck"]["test"][1:]
    relocated = [
        arg.replace("/testbed/", f"{state}/").replace("localhost:19093", f"localhost:{alertmanager}")
        for arg in argv
    ]
    relocated[0] = str(BINARIES["amtool"])
    result = subprocess.run(relocated, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    wrong = state / "wrong-client.yml"
    document = yaml.safe_load((state / "config/alertmanager/client.yml").read_text())
    (state / "wrong-password").write_text("nope")
    document["basic_auth"]["password_file"] = str(state / "wrong-password")
    wrong.write_text(yaml.safe_dump(document))
    refused = [
        arg if not arg.startswith("--http.config.file") else f"--http.config.file={wrong}"
        for arg in relocated
    ]
    assert subprocess.run(refused, capture_output=True, text=True, timeout=30).returncode != 0


@pytest.mark.native
def test_elasticsearch_healthcheck_command_against_a_real_node(native_stack: Any) -> None:
    """compose.yaml's Elasticsearch healthcheck (curl + grep), run against the native node of the same
    version: the native CA, password and port stand in for the container's."""
    script = load_compose(render_env())["services"]["elasticsearch"]["healthcheck"]["test"][1]
    port = native_stack.port("elasticsearch")
    relocated = script.replace("config/certs/ca.crt", str(native_stack.ca_cert)).replace(
        "localhost:19200", f"localhost:{port}"
    )
    env = {"PATH": "/usr/bin:/bin", "ELASTIC_PASSWORD": native_stack.secrets.elastic_password}
    assert subprocess.run(["sh", "-c", relocated], env=env, timeout=30).returncode == 0
    env["ELASTIC_PASSWORD"] = "wrong"
    assert subprocess.run(["sh", "-c", relocated], env=env, timeout=30).returncode != 0
