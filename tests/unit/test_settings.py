"""The one declaration of ports: distinct, and a second stack shifted by whole thousands never collides."""

from __future__ import annotations

import pytest

from testbed import settings


@pytest.fixture(autouse=True)
def _declared_ports_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in settings.ports():
        monkeypatch.delenv(f"TESTBED_PORT_{name.upper()}", raising=False)
    monkeypatch.delenv("TESTBED_PORT_OFFSET", raising=False)


def _all_ports() -> list[tuple[str, int]]:
    return [(name, port) for name, ports in settings.ports().items() for port in ports]


def test_every_declared_port_is_distinct() -> None:
    ports = [port for _, port in _all_ports()]
    assert len(ports) == len(set(ports))


def test_stacks_offset_by_whole_thousands_never_share_a_port() -> None:
    ports = _all_ports()
    clashes = [(a, pa, b, pb) for a, pa in ports for b, pb in ports if pb > pa and (pb - pa) % 1000 == 0]
    assert clashes == [], "a stack at TESTBED_PORT_OFFSET=N*1000 would take another stack's port"


def test_offset_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTBED_PORT_OFFSET", "1000")
    monkeypatch.setenv("TESTBED_PORT_GATEWAY", "7000,7001")
    assert settings.port("elasticsearch") == 20200
    assert settings.ports()["gateway"] == [7000, 7001]


def test_bad_offset_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTBED_PORT_OFFSET", "many")
    with pytest.raises(ValueError, match="TESTBED_PORT_OFFSET"):
        settings.ports()
