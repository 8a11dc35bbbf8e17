"""A service refuses to start with one clear line when a setting is missing or malformed."""

from __future__ import annotations

import pytest

from services.common.settings import ServiceSettings, load_settings
from services.orders.app import OrdersSettings


def test_missing_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("SHOP_SERVICE_NAME", "orders")
    monkeypatch.setenv("SHOP_PORT", "8000")
    monkeypatch.setenv("SHOP_AMQP_URL", "amqp://u:p@127.0.0.1:5672/")
    monkeypatch.delenv("SHOP_DATABASE_URL", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        load_settings(OrdersSettings)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "SHOP_DATABASE_URL is missing" in lines[0]


def test_malformed_setting_is_refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("SHOP_SERVICE_NAME", "gateway")
    monkeypatch.setenv("SHOP_PORT", "not-a-port")
    with pytest.raises(SystemExit):
        load_settings(ServiceSettings)
    err = capsys.readouterr().err
    assert "SHOP_PORT is invalid" in err
    assert "Traceback" not in err


def test_valid_settings_load(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHOP_SERVICE_NAME", "gateway")
    monkeypatch.setenv("SHOP_PORT", "18080")
    monkeypatch.setenv("SHOP_INSTANCE", "1")
    settings = load_settings(ServiceSettings)
    assert settings.instance_name == "gateway-1"
    assert settings.fault_admin_token is None
