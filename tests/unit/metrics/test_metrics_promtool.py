"""promtool over the rendered configuration and the generated rules (Debian's promtool 2.42)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.context import RenderContext
from testbed.metrics.render import COMPOSE_PROMETHEUS_DIR, render_native
from testbed.metrics.rules import RULES_DIR
from testbed.metrics.scrape import SERVICES, prometheus_dir
from testbed.settings import STACK_DIR

RULE_TESTS = sorted((STACK_DIR / "prometheus" / "tests").glob("*_test.yml"))


@pytest.fixture
def promtool(promtool_bin: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([promtool_bin, *args], capture_output=True, text=True, timeout=600)

    return run


def test_native_config_is_valid(native_ctx: RenderContext, promtool: Callable[..., Any]) -> None:
    render_native(native_ctx)
    result = promtool("check", "config", str(prometheus_dir(native_ctx) / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    # The rule files were found next to the config and checked too.
    assert "rules/slo.yml" in result.stdout


def test_native_config_scrapes_every_component_on_loopback(native_ctx: RenderContext) -> None:
    render_native(native_ctx)
    config = yaml.safe_load((prometheus_dir(native_ctx) / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    expected = {
        *SERVICES,
        "node",
        "postgres",
        "elasticsearch",
        "rabbitmq",
        "rsyslog",
        "blackbox",
        "blackbox_exporter",
    }
    assert expected | {"prometheus", "alertmanager"} <= set(jobs)
    targets = [t for job in jobs.values() for static in job["static_configs"] for t in static["targets"]]
    assert all(t.startswith(("127.0.0.1:", "http://127.0.0.1:")) for t in targets), targets
    assert len(jobs["gateway"]["static_configs"][0]["targets"]) == len(native_ctx.ports["gateway"])
    for name in ("prometheus", "alertmanager"):
        assert jobs[name]["scheme"] == "https"
        assert jobs[name]["tls_config"]["ca_file"] == str(native_ctx.ca_cert)
        password_file = Path(jobs[name]["basic_auth"]["password_file"])
        assert password_file.read_text() == getattr(native_ctx.secrets, f"{name}_password")
        assert password_file.stat().st_mode & 0o777 == 0o600


def test_compose_config_is_valid(promtool: Callable[..., Any]) -> None:
    result = promtool("check", "config", "--syntax-only", str(COMPOSE_PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_rules_are_valid(promtool: Callable[..., Any]) -> None:
    files = sorted(str(p) for p in RULES_DIR.glob("*.yml"))
    result = promtool("check", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_rule_unit_tests_pass(test_file: Path, promtool: Callable[..., Any]) -> None:
    result = promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_rule_test_and_its_annotations() -> None:
    alerts = {}
    for path in RULES_DIR.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts[rule["alert"]] = rule
    tested = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            checks = case.get("alert_rule_test", [])
            tested |= {check["alertname"] for check in checks if check.get("exp_alerts")}
    assert set(alerts) - tested == set(), "alerts without a promtool test that proves they fire"
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name
