"""The live native stack: health, security by default, loopback-only ports, per-component control."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import aio_pika
import asyncpg
import httpx
import psutil
import pytest

from testbed.context import RenderContext
from testbed.native import control, health, smoke
from testbed.native.control import NativeStack

pytestmark = pytest.mark.native

TESTBED = str(Path(sys.executable).parent / "testbed")
INFRA = {
    "elasticsearch", "prometheus", "alertmanager", "node_exporter", "postgres_exporter",
    "elasticsearch_exporter", "blackbox_exporter", "postgresql", "epmd", "rabbitmq", "rsyslog",
}  # fmt: skip


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TESTBED, *args], capture_output=True, text=True, timeout=300, check=False)


def test_status_json_lists_every_component_healthy(native_stack: RenderContext) -> None:
    result = run_cli("status", "--json")
    assert result.returncode == 0, result.stderr
    components = json.loads(result.stdout)["components"]
    assert set(components) >= INFRA
    for name, item in components.items():
        assert set(item) >= {"state", "health", "pid", "url"}
        assert item["state"] == "RUNNING", name
        assert item["health"] == "healthy", name
        assert isinstance(item["pid"], int), name


def test_elasticsearch_answers_over_tls_with_credentials_only(native_stack: RenderContext) -> None:
    ctx = native_stack
    url = f"https://{ctx.address('elasticsearch')}/_cluster/health"
    tls = health.tls_context(ctx.ca_cert)
    authenticated = httpx.get(url, auth=("elastic", ctx.secrets.elastic_password), verify=tls, timeout=10)
    assert authenticated.status_code == 200
    assert authenticated.json()["status"] in ("green", "yellow")
    assert httpx.get(url, verify=tls, timeout=10).status_code == 401
    assert httpx.get(url, auth=("elastic", "wrong"), verify=tls, timeout=10).status_code == 401
    with pytest.raises(httpx.HTTPError):  # no plain HTTP
        httpx.get(f"http://{ctx.address('elasticsearch')}/_cluster/health", timeout=10)


@pytest.mark.parametrize("name", ["prometheus", "alertmanager"])
def test_prometheus_and_alertmanager_refuse_anonymous(native_stack: RenderContext, name: str) -> None:
    ctx = native_stack
    password = getattr(ctx.secrets, f"{name}_password")
    url = f"https://{ctx.address(name)}/-/ready"
    tls = health.tls_context(ctx.ca_cert)
    assert httpx.get(url, verify=tls, timeout=10).status_code == 401
    assert httpx.get(url, auth=("testbed", "wrong"), verify=tls, timeout=10).status_code == 401
    assert httpx.get(url, auth=("testbed", password), verify=tls, timeout=10).status_code == 200


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:  # Java: ::ffff:127.0.0.1
        address = address.ipv4_mapped
    return address.is_loopback


def test_every_listening_port_is_loopback_only(native_stack: RenderContext) -> None:
    processes = control.stack_processes(native_stack)
    pids = {p.pid for p in processes}
    assert pids, "no process of the stack found"
    listening = [
        conn
        for conn in psutil.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids
    ]
    assert listening
    exposed = [(conn.pid, conn.laddr) for conn in listening if not _is_loopback(conn.laddr.ip)]
    assert exposed == []
    ports = {conn.laddr.port for conn in listening}
    for port_name in ("elasticsearch", "prometheus", "alertmanager", "postgresql", "rabbitmq",
                      "rabbitmq_prometheus", "rabbitmq_epmd", "rabbitmq_dist"):  # fmt: skip
        assert native_stack.port(port_name) in ports, port_name


def test_env_exports_reach_elasticsearch_with_curl(native_stack: RenderContext) -> None:
    exports = run_cli("env")
    assert exports.returncode == 0
    script = exports.stdout + (
        'curl -sf --cacert "$TESTBED_CA_CERT" -u "$TESTBED_ES_USER:$TESTBED_ES_PASSWORD" '
        '"$TESTBED_ES_URL/_cluster/health"'
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cluster_name"] == "testbed"


def test_restart_of_one_component_via_the_cli(native_stack: RenderContext) -> None:
    before = NativeStack(native_stack).status()["blackbox_exporter"].pid
    result = run_cli("restart", "blackbox_exporter")
    assert result.returncode == 0, result.stderr
    after = NativeStack(native_stack).status()["blackbox_exporter"]
    assert after.health == "healthy"
    assert after.pid != before


def test_kill_is_seen_and_start_brings_it_back(native_stack: RenderContext) -> None:
    stack = NativeStack(native_stack)
    stack.kill("node_exporter")
    status = stack.status()["node_exporter"]
    assert status.state in ("EXITED", "STOPPED", "FATAL", "BACKOFF")
    assert status.health == "stopped"
    stack.start("node_exporter")
    assert stack.status()["node_exporter"].health == "healthy"


def test_unknown_component_is_one_clear_line(native_stack: RenderContext) -> None:
    result = run_cli("restart", "no-such-thing")
    assert result.returncode != 0
    assert "no component named 'no-such-thing'" in result.stderr
    assert "Traceback" not in result.stderr


def test_logs_shows_a_component_output(native_stack: RenderContext) -> None:
    result = run_cli("logs", "postgresql", "-n", "5")
    assert result.returncode == 0, result.stderr
    assert 0 < len(result.stdout.splitlines()) <= 5
    assert Path(native_stack.log_dir / "postgresql" / "postgresql.out.log").exists()


def test_smoke_checks_pass_with_the_stack_credentials(native_stack: RenderContext) -> None:
    failed = [r for r in smoke.run_all(native_stack) if not r.ok]
    assert failed == []


def test_postgresql_and_rabbitmq_refuse_other_credentials(native_stack: RenderContext) -> None:
    ctx = native_stack

    async def attempts() -> None:
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(host="127.0.0.1", port=ctx.port("postgresql"), user="testbed",
                                  password="wrong", database="postgres")  # fmt: skip
        # The default guest account was never created.
        with pytest.raises(aio_pika.exceptions.ProbableAuthenticationError):
            await aio_pika.connect(f"amqp://guest:guest@{ctx.address('rabbitmq')}/", timeout=10)

    asyncio.run(attempts())


def test_env_exports_let_amtool_and_promtool_in(native_stack: RenderContext) -> None:
    exports = run_cli("env").stdout
    script = exports + (
        'export PATH="$TESTBED_BIN_DIR:$PATH"\n'
        'amtool --alertmanager.url="$TESTBED_ALERTMANAGER_URL" '
        '--http.config.file="$TESTBED_ALERTMANAGER_HTTP_CONFIG" -o json alert query\n'
        'promtool query instant --http.config.file="$TESTBED_PROMETHEUS_HTTP_CONFIG" '
        "\"$TESTBED_PROMETHEUS_URL\" 'count(up)'\n"
        "promtool --version | grep -q 'version 3[.]5[.]0'\n"  # the compose version, not a distribution's
    )
    result = subprocess.run(["bash", "-ec", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "=>" in result.stdout  # promtool printed a sample
