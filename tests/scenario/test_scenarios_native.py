"""Scenarios run for real against the native stack: the smoke and two chaos scenarios pass, and a
deliberately mis-specified scenario is reported as failed (not passed, not bad input)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from testbed.context import RenderContext
from testbed.scenario.errors import ScenarioInputError
from testbed.scenario.runner import run_scenario
from testbed.settings import REPO_ROOT

pytestmark = [pytest.mark.native, pytest.mark.slow]
SCENARIOS = REPO_ROOT / "scenarios"


def _run(path: Path, results: Path) -> list[str]:
    outcome = run_scenario(path, "native", results, Console(force_terminal=False))
    assert outcome.report.is_file() and (outcome.run_dir / "junit.xml").is_file()
    return [
        f"{r.name}: expected {r.expected}, observed {r.observed} ({r.detail})"
        for r in outcome.results
        if not r.passed
    ]


@pytest.mark.parametrize("name", ["smoke", "service-killed", "elasticsearch-down"])
def test_scenario_passes(native_stack: RenderContext, tmp_path: Path, name: str) -> None:
    failures = _run(SCENARIOS / f"{name}.yaml", tmp_path)
    assert failures == []


def test_impossible_alert_is_reported_failed(native_stack: RenderContext, tmp_path: Path) -> None:
    failures = _run(Path(__file__).parent / "data" / "expects-impossible-alert.yaml", tmp_path)
    assert any("PostgresDown" in f and "never fired" in f for f in failures), failures


def test_unknown_metric_is_bad_input_before_any_load(native_stack: RenderContext, tmp_path: Path) -> None:
    with pytest.raises(ScenarioInputError) as caught:
        run_scenario(Path(__file__).parent / "data" / "unknown-metric.yaml", "native", tmp_path, Console())
    assert "shop_requests_served_total" in caught.value.problem
    assert caught.value.where == "assertions.cross_signal.prometheus_counter"
    assert list(tmp_path.iterdir()) == []  # nothing ran
