"""TSDB retention is declared once (policy.yaml) and reaches Prometheus' flags in both modes."""

from __future__ import annotations

import yaml

from testbed.context import RenderContext
from testbed.deploy.envfile import render_env
from testbed.metrics.policy import load_policy
from testbed.metrics.scrape import retention_flags
from testbed.native.stack import prometheus
from testbed.settings import STACK_DIR


def test_native_prometheus_runs_with_the_policy_retention(native_ctx: RenderContext) -> None:
    retention = load_policy().retention
    command = list(prometheus(native_ctx).command)
    assert f"--storage.tsdb.retention.time={retention.time}" in command
    assert f"--storage.tsdb.retention.size={retention.size}" in command
    assert retention_flags() == [arg for arg in command if arg.startswith("--storage.tsdb.retention.")]


def test_compose_prometheus_gets_the_policy_retention_through_the_env_file() -> None:
    retention = load_policy().retention
    env = render_env()
    assert env["PROMETHEUS_RETENTION_TIME"] == retention.time
    assert env["PROMETHEUS_RETENTION_SIZE"] == retention.size
    compose = yaml.safe_load((STACK_DIR / "compose.yaml").read_text())
    command = compose["services"]["prometheus"]["command"]
    assert any("${PROMETHEUS_RETENTION_TIME" in arg for arg in command)
    assert any("${PROMETHEUS_RETENTION_SIZE" in arg for arg in command)
