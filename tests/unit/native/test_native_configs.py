"""Config generation of the native stack: nothing runs, files are rendered into a temp state dir."""

from __future__ import annotations

import configparser
import threading
import time
from pathlib import Path

import bcrypt
import pytest
import yaml
from cryptography import x509

from testbed import settings
from testbed.context import RenderContext
from testbed.metrics.render import render_secret_files
from testbed.metrics.scrape import prometheus_dir
from testbed.native import configs, pki
from testbed.native import stack as stack_definition
from testbed.native import supervisor as sv
from testbed.native.component import Component, HealthCheck
from testbed.native.control import NativeStack, StackError
from testbed.native.errors import no_event
from testbed.native.startup import CREDENTIALS_GRACE_S, StartAttempt
from testbed.secrets import Secrets


@pytest.fixture
def ctx(tmp_path: Path) -> RenderContext:
    return RenderContext(mode="native", state_dir=tmp_path, ports=settings.ports(), secrets=Secrets())


def _conf(ctx: RenderContext, run_as: str | None = "testbed") -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read_string(sv.render_conf(ctx, stack_definition.components(ctx), run_as))
    return parser


def test_supervisord_conf_has_every_component_not_autostarted(ctx: RenderContext) -> None:
    parser = _conf(ctx)
    programs = {s.removeprefix("program:") for s in parser.sections() if s.startswith("program:")}
    expected = {
        "elasticsearch", "prometheus", "alertmanager", "node_exporter", "postgres_exporter",
        "elasticsearch_exporter", "blackbox_exporter", "postgresql", "epmd", "rabbitmq", "rsyslog",
    }  # fmt: skip
    assert expected <= programs
    for name in expected:
        section = parser[f"program:{name}"]
        assert section["autostart"] == "false"  # `up` starts them in dependency order
        assert section["user"] == "testbed"
        assert section["stdout_logfile"] == str(ctx.log_dir / name / f"{name}.out.log")
        assert section["stopasgroup"] == "true"
    assert parser["unix_http_server"]["file"] == str(ctx.state_dir / "supervisor" / "supervisor.sock")
    assert f'{sv.STACK_MARKER_ENV}="{ctx.state_dir}"' in parser["supervisord"]["environment"]


def test_supervisord_conf_without_root_sets_no_user(ctx: RenderContext) -> None:
    parser = _conf(ctx, run_as=None)
    assert "user" not in parser["program:elasticsearch"]


def test_supervisord_conf_escapes_percent_and_quotes_arguments(ctx: RenderContext) -> None:
    component = Component(name="odd", command=["/bin/echo", "50% done", "it's"], environment={"RATE": "100%"})
    text = sv.render_conf(ctx, [component], None)
    assert 'RATE="100%%"' in text
    assert "command=/bin/echo '50%% done' 'it'\"'\"'s'" in text


def test_elasticsearch_yml_is_secure_and_loopback_only(ctx: RenderContext) -> None:
    config = yaml.safe_load(configs.elasticsearch_yml(ctx))
    assert config["network.host"] == "127.0.0.1"
    assert config["http.port"] == settings.port("elasticsearch")
    assert config["transport.port"] == settings.port("elasticsearch_transport")
    assert config["xpack.security.enabled"] is True
    assert config["xpack.security.http.ssl.enabled"] is True
    assert config["node.store.allow_mmap"] is False
    assert config["cluster.routing.allocation.disk.threshold_enabled"] is False
    assert config["discovery.type"] == "single-node"
    assert config["path.repo"] == [str(ctx.snapshot_dir)]


def test_elasticsearch_heap_is_one_gigabyte() -> None:
    assert configs.ES_JAVA_OPTS.startswith("-Xms1g -Xmx1g")


def test_port_offset_moves_every_rendered_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESTBED_PORT_OFFSET", raising=False)
    monkeypatch.delenv("TESTBED_PORT_ELASTICSEARCH", raising=False)
    base = settings.port("elasticsearch")
    monkeypatch.setenv("TESTBED_PORT_OFFSET", "1000")
    monkeypatch.setenv("TESTBED_PORT_RABBITMQ", "25999")
    shifted = RenderContext(mode="native", state_dir=tmp_path, ports=settings.ports(), secrets=Secrets())
    assert yaml.safe_load(configs.elasticsearch_yml(shifted))["http.port"] == base + 1000
    assert "listeners.tcp.default = 127.0.0.1:25999" in configs.rabbitmq_conf(shifted)
    parser = configparser.RawConfigParser()
    parser.read_string(sv.render_conf(shifted, stack_definition.components(shifted), None))
    assert f"127.0.0.1:{settings.ports()['prometheus'][0]}" in parser["program:prometheus"]["command"]


def test_web_config_has_tls_and_a_bcrypt_hash_kept_across_renders(ctx: RenderContext) -> None:
    pki.ensure_pki(ctx.pki_dir)
    path = prometheus_dir(ctx) / "web.yml"
    render_secret_files(ctx, ctx.secrets.model_copy(update={"prometheus_password": "s3cret"}))
    config = yaml.safe_load(path.read_text())
    assert config["tls_server_config"]["cert_file"] == str(ctx.pki_dir / "prometheus.crt")
    hashed = config["basic_auth_users"]["testbed"]
    assert bcrypt.checkpw(b"s3cret", hashed.encode())
    assert path.stat().st_mode & 0o007 == 0  # not readable by other users
    render_secret_files(ctx, ctx.secrets.model_copy(update={"prometheus_password": "s3cret"}))
    assert yaml.safe_load(path.read_text())["basic_auth_users"]["testbed"] == hashed
    render_secret_files(ctx, ctx.secrets.model_copy(update={"prometheus_password": "changed"}))
    rehashed = yaml.safe_load(path.read_text())["basic_auth_users"]["testbed"]
    assert bcrypt.checkpw(b"changed", rehashed.encode())


def test_rabbitmq_is_private_and_loopback_only(ctx: RenderContext) -> None:
    env = configs.rabbitmq_environment(ctx)
    assert env["RABBITMQ_NODE_PORT"] == str(settings.port("rabbitmq"))
    assert env["ERL_EPMD_PORT"] == str(settings.port("rabbitmq_epmd"))
    assert env["RABBITMQ_DIST_PORT"] == str(settings.port("rabbitmq_dist"))
    assert env["RABBITMQ_MNESIA_BASE"].startswith(str(ctx.state_dir))
    assert "inet_dist_use_interface {127,0,0,1}" in env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    conf = configs.rabbitmq_conf(ctx)
    assert "prometheus.tcp.ip = 127.0.0.1" in conf
    assert "default_user = testbed" in conf
    assert "guest" not in conf


def test_every_component_binds_loopback(ctx: RenderContext) -> None:
    for component in stack_definition.components(ctx):
        for arg in component.command:
            if "listen-address=" in arg and arg != "--cluster.listen-address=":  # empty: gossip off
                assert "=127.0.0.1:" in arg, (component.name, arg)


def test_pki_once_per_state_dir_with_private_keys(ctx: RenderContext) -> None:
    pki.ensure_pki(ctx.pki_dir)
    first = (ctx.pki_dir / "elasticsearch.crt").read_bytes()
    for name in pki.TLS_ENDPOINTS:
        cert = x509.load_pem_x509_certificate((ctx.pki_dir / f"{name}.crt").read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in san.get_values_for_type(x509.DNSName)
        assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
        assert (ctx.pki_dir / f"{name}.key").stat().st_mode & 0o777 == 0o600
    pki.ensure_pki(ctx.pki_dir)
    assert (ctx.pki_dir / "elasticsearch.crt").read_bytes() == first


def test_dependency_cycle_and_unknown_dependency_are_refused(ctx: RenderContext) -> None:
    a = Component(name="a", command=["/bin/true"], depends_on=("b",))
    b = Component(name="b", command=["/bin/true"], depends_on=("a",))
    with pytest.raises(StackError, match="dependency cycle"):
        NativeStack(ctx, [a, b])
    with pytest.raises(StackError, match="unknown component 'missing'"):
        NativeStack(ctx, [Component(name="c", command=["/bin/true"], depends_on=("missing",))])


def test_unknown_component_name_lists_the_known_ones(ctx: RenderContext) -> None:
    stack = NativeStack(ctx, [Component(name="only", command=["/bin/true"])])
    with pytest.raises(StackError, match="pick one of only"):
        stack.component("nope")


def test_ports_of_a_second_instance(ctx: RenderContext) -> None:
    second = Component(name="gateway-1", command=["/bin/true"], port_names=("gateway",), port_instance=1)
    stack = NativeStack(ctx, [second])
    assert stack.ports_of(second) == {"gateway": settings.ports()["gateway"][1]}


def test_up_and_down_of_one_stack_are_serialised(ctx: RenderContext) -> None:
    first = NativeStack(ctx, [Component(name="only", command=["/bin/true"])])
    second = NativeStack(ctx, [Component(name="only", command=["/bin/true"])])
    events: list[str] = []
    with first.exclusive(), first.exclusive():  # re-entrant within one stack object
        waiter = threading.Thread(target=lambda: second.exclusive(lambda *e: events.append(e[2])).__enter__())
        waiter.start()
        waiter.join(timeout=1)
        assert waiter.is_alive(), "the second up/down should wait for the first"
        assert events == ["another up/down of this stack is running"]
    waiter.join(timeout=5)
    assert not waiter.is_alive()


def test_start_gives_up_on_refused_credentials_and_on_timeout(ctx: RenderContext) -> None:
    component = Component(
        name="es", command=["/bin/true"], health=HealthCheck("https", "https://127.0.0.1:1/", timeout_s=100)
    )
    stack = NativeStack(ctx, [component])
    now = time.monotonic()
    patient = StartAttempt(since=now)
    stack.starter.fail_if_hopeless(component, patient, "HTTP 401", no_event)  # the first 401 is tolerated
    patient.refused_since = now - CREDENTIALS_GRACE_S - 1
    with pytest.raises(StackError, match="refuses the stack's credentials"):
        stack.starter.fail_if_hopeless(component, patient, "HTTP 401", no_event)
    with pytest.raises(StackError, match=r"not healthy within 100 s \(last probe: HTTP 503\)"):
        stack.starter.fail_if_hopeless(component, StartAttempt(since=now - 101), "HTTP 503", no_event)


def test_a_render_that_changes_files_marks_its_component_for_restart(ctx: RenderContext) -> None:
    calls = {"n": 0}

    def render(c: RenderContext) -> None:
        calls["n"] += 1
        configs.write_file(c.config_dir / "thing" / "thing.conf", "same\n")

    stack = NativeStack(ctx, [Component(name="thing", command=["/bin/true"], render=render)])
    stack.check_installed = lambda: None  # type: ignore[method-assign]  # no Elasticsearch needed here
    assert stack.prepare() == {"thing"}  # first render: the file appears
    assert stack.prepare() == set()  # same content: nothing to restart
    (ctx.config_dir / "thing" / "thing.conf").write_text("edited by hand\n")
    assert stack.prepare() == {"thing"}  # the render put it back: restart to apply
    assert calls["n"] == 3
