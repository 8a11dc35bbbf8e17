"""The compose `prepare` job, run here into a temporary state dir exactly as in its container."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from testbed.deploy import setup
from testbed.deploy.envfile import render_env
from testbed.deploy.runtime import compose_context
from testbed.metrics.web_config import password_matches


def _prepared(tmp_path: Path) -> tuple[dict[str, str], Path]:
    env = {**render_env(), "TESTBED_STATE_DIR": str(tmp_path)}
    setup.prepare(compose_context(env))
    return env, tmp_path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_certificates_name_the_compose_services(tmp_path: Path) -> None:
    _, state = _prepared(tmp_path)
    for name in ("elasticsearch", "prometheus", "alertmanager"):
        cert = x509.load_pem_x509_certificate((state / "pki" / f"{name}.crt").read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert name in names.get_values_for_type(x509.DNSName)


def test_keys_are_shared_with_the_pki_group_only_and_the_ca_key_with_nobody(tmp_path: Path) -> None:
    _, state = _prepared(tmp_path)
    assert _mode(state / "pki" / "elasticsearch.key") == 0o640
    assert _mode(state / "pki" / "ca.key") == 0o600
    assert _mode(state / "pki" / "ca.crt") == 0o644
    for path in (state / "config").rglob("*"):
        assert _mode(path) & 0o007 == 0, path


def test_web_and_client_configs_agree_on_the_password(tmp_path: Path) -> None:
    env, state = _prepared(tmp_path)
    for server in ("prometheus", "alertmanager"):
        directory = state / "config" / server
        assert password_matches(directory / "web.yml", env[f"{server.upper()}_PASSWORD"])
        client = yaml.safe_load((directory / "client.yml").read_text())
        password_file = Path(client["basic_auth"]["password_file"])
        assert password_file.read_text() == env[f"{server.upper()}_PASSWORD"]
        assert client["tls_config"]["ca_file"] == str(state / "pki" / "ca.crt")


def test_rerun_keeps_the_ca(tmp_path: Path) -> None:
    env, state = _prepared(tmp_path)
    before = (state / "pki" / "ca.crt").read_bytes()
    setup.prepare(compose_context(env))
    assert (state / "pki" / "ca.crt").read_bytes() == before


def test_every_service_container_finds_its_declared_component(monkeypatch: pytest.MonkeyPatch) -> None:
    from testbed.deploy.runtime import SERVICE_NAMES, health_url, service_component

    for key, value in render_env().items():
        monkeypatch.setenv(key, value)
    ctx = compose_context()
    seen = set()
    for name in SERVICE_NAMES:
        for instance, port in enumerate(ctx.ports[name]):
            component = service_component(ctx, name, instance)
            seen.add(component.name)
            assert health_url(name, instance).startswith(f"http://127.0.0.1:{port}/")
    assert len(seen) == sum(len(ctx.ports[name]) for name in SERVICE_NAMES), "one component per instance"
