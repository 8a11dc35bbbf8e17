"""amtool over the rendered alertmanager.yml: it is valid and every route sends where it should."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.context import RenderContext
from testbed.metrics.alertmanager import DEFAULT_RECEIVER, RECEIVER_BY_SEVERITY, sink_url
from testbed.metrics.render import COMPOSE_ALERTMANAGER_DIR, render_native
from testbed.metrics.scrape import alertmanager_dir


@pytest.fixture
def amtool(amtool_bin: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([amtool_bin, *args], capture_output=True, text=True, timeout=300)

    return run


@pytest.fixture
def native_config(native_ctx: RenderContext) -> Path:
    render_native(native_ctx)
    return alertmanager_dir(native_ctx) / "alertmanager.yml"


@pytest.mark.parametrize("which", ["native", "compose"])
def test_config_is_valid(which: str, native_config: Path, amtool: Callable[..., Any]) -> None:
    path = native_config if which == "native" else COMPOSE_ALERTMANAGER_DIR / "alertmanager.yml"
    result = amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


ROUTES = [
    ({"alertname": "TargetDown", "severity": "critical", "service": "gateway"}, "sink-page"),
    ({"alertname": "SLOBurnRateFast", "severity": "critical", "slo": "x"}, "sink-page"),
    ({"alertname": "ServiceHighErrorRate", "severity": "warning", "service": "orders"}, "sink-ticket"),
    ({"alertname": "ServiceRequestRateAnomaly", "severity": "info"}, "sink-info"),
    ({"alertname": "SomethingNew"}, DEFAULT_RECEIVER),
    ({"alertname": "Odd", "severity": "page"}, DEFAULT_RECEIVER),
]


@pytest.mark.parametrize(("labels", "receiver"), ROUTES, ids=[r for _, r in ROUTES])
def test_route_reaches_its_receiver(
    native_config: Path, labels: dict[str, str], receiver: str, amtool: Callable[..., Any]
) -> None:
    pairs = [f"{key}={value}" for key, value in labels.items()]
    result = amtool(
        "config", "routes", "test", f"--config.file={native_config}", f"--verify.receivers={receiver}", *pairs
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_receiver_is_the_alert_sink_with_resolved_notifications(
    native_ctx: RenderContext, native_config: Path
) -> None:
    config = yaml.safe_load(native_config.read_text())
    names = {receiver["name"] for receiver in config["receivers"]}
    assert names == {DEFAULT_RECEIVER, *RECEIVER_BY_SEVERITY.values()}
    for receiver in config["receivers"]:
        (webhook,) = receiver["webhook_configs"]
        assert (
            webhook["url"]
            == sink_url(native_ctx)
            == f"http://127.0.0.1:{native_ctx.port('alert_sink')}/webhook"
        )
        assert webhook["send_resolved"] is True


def test_database_down_inhibits_the_downstream_alerts(native_config: Path) -> None:
    rules = yaml.safe_load(native_config.read_text())["inhibit_rules"]
    (database,) = [r for r in rules if r["source_matchers"] == ['alertname="PostgresDown"']]
    (target,) = database["target_matchers"]
    for downstream in ("ServiceHighErrorRate", "SLOBurnRateFast", "SLOBurnRateSlow"):
        assert downstream in target
    assert "PostgresDown" not in target.split("=~", 1)[1]
