"""Without a Docker engine or a registry, the deploy commands say so in one line and exit non-zero."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testbed import settings
from testbed.deploy.compose import engine_problem, status_from_ps

TESTBED = Path(sys.executable).parent / "testbed"


def _testbed(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TESTBED), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(engine_problem() is None, reason="a Docker engine is reachable here")
@pytest.mark.parametrize(
    "command", [("compose", "up"), ("up", "--backend", "compose"), ("status", "--backend", "compose")]
)
def test_compose_without_engine_fails_with_one_line(command: tuple[str, ...]) -> None:
    result = _testbed(*command)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Docker engine" in lines[0], result.stderr


def test_compose_status_json_shape_from_ps_output() -> None:
    ps = (
        '{"Service":"kibana","State":"running","Health":"healthy"}\n'
        '{"Service":"prepare","State":"exited","Health":""}\n'
    )
    components = status_from_ps(ps)["components"]
    assert components["kibana"] == {
        "state": "running",
        "health": "healthy",
        "pid": None,
        "url": components["kibana"]["url"],
    }
    assert components["kibana"]["url"].startswith("http://127.0.0.1:")
    assert components["prepare"]["url"] is None


def test_unknown_backend_is_refused_with_the_choices() -> None:
    result = _testbed("up", "--backend", "kubernetes")
    assert result.returncode == 2
    assert "choose one of native, compose" in result.stderr


def test_host_context_reads_the_env_files_secrets_and_points_at_loopback(tmp_path: Path) -> None:
    from testbed.deploy.compose import host_context
    from testbed.deploy.envfile import read_env, write_env

    env_file = write_env(tmp_path / ".env")
    ctx = host_context(env_file)
    assert ctx.secrets.elastic_password == read_env(env_file)["ELASTIC_PASSWORD"]
    assert ctx.host("elasticsearch") == "127.0.0.1"
    assert ctx.ca_cert.parent.parent.name == "compose"


def test_host_context_without_env_file_names_the_fix(tmp_path: Path) -> None:
    from testbed.deploy.compose import ComposeUnavailable, host_context

    with pytest.raises(ComposeUnavailable, match="testbed init"):
        host_context(tmp_path / "missing.env")


def test_every_native_component_has_a_compose_service_or_says_why() -> None:
    from testbed.context import RenderContext
    from testbed.deploy.compose import COMPONENT_SERVICES, NO_COMPOSE_EQUIVALENT
    from testbed.deploy.envfile import render_env
    from testbed.deploy.validate import load_compose
    from testbed.native.stack import components
    from testbed.secrets import Secrets

    # The native component list (names only): a compose context would refuse epmd's address, which
    # compose does not run.
    ctx = RenderContext(
        mode="native", state_dir=Path("/nonexistent"), ports=settings.ports(), secrets=Secrets()
    )
    services = set(load_compose(render_env())["services"])
    for component in components(ctx):
        if component.name in NO_COMPOSE_EQUIVALENT or component.group == "jobs":
            continue
        assert COMPONENT_SERVICES.get(component.name) in services, component.name


def test_status_uses_native_names_and_verbs_accept_them() -> None:
    from testbed.deploy.compose import service_names

    ps = (
        '{"Service":"postgres","State":"running","Health":"healthy"}\n'
        '{"Service":"gateway-2","State":"running"}'
    )
    assert set(status_from_ps(ps)["components"]) == {"postgresql", "gateway-1"}
    assert service_names(["postgresql", "gateway-1", "rsyslog", "kibana"]) == [
        "postgres",
        "gateway-2",
        "logstash",
        "kibana",
    ]


def test_chaos_reaches_the_compose_stack_through_its_host_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from testbed import settings
    from testbed.access import StackAccess
    from testbed.deploy import compose
    from testbed.deploy.envfile import read_env, write_env

    env_file = write_env(tmp_path / ".env")
    monkeypatch.setattr(compose, "ENV_FILE", env_file)
    monkeypatch.setattr(compose.host_context, "__defaults__", (env_file,))
    monkeypatch.setenv("TESTBED_BACKEND", "compose")
    access = StackAccess.current()
    assert access.ctx.secrets.prometheus_password == read_env(env_file)["PROMETHEUS_PASSWORD"]
    # Published on the ports the stack declares (TESTBED_PORT_OFFSET applies as natively).
    assert access.service_url("gateway", 1) == f"http://127.0.0.1:{settings.port('gateway', 1)}"
