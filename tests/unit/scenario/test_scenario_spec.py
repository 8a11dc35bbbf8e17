"""Scenario spec: good specs load, bad ones give one line naming file, line, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.scenario.errors import ScenarioInputError
from testbed.scenario.spec import LoadShape, Window, check_alert_names, load_scenario, parse_scenario
from testbed.settings import REPO_ROOT

GOOD = """\
name: sample
tags: [ci]
load:
  shape: steady
  users: 4
  duration_s: 60
  rate: 8
chaos:
  experiment: chaos/experiments/service-killed.yaml
  start_at_s: 10
  fault_duration_s: 30
assertions:
  availability:
    - min_success_ratio: 0.99
      window: outside_fault
  latency:
    - percentile: 95
      max_ms: 500
  logs: {min_completeness: 1.0, max_lag_s: 30}
  alerts_expected:
    - name: ServiceDown
      max_time_to_fire_s: 60
  alerts_forbidden: [HighLatency]
  cross_signal: {tolerance: 0.01}
"""


def _error(text: str) -> ScenarioInputError:
    with pytest.raises(ScenarioInputError) as caught:
        parse_scenario(text, "bad.yaml")
    return caught.value


def test_good_spec_loads() -> None:
    scenario = parse_scenario(GOOD, "good.yaml")
    assert scenario.load.shape is LoadShape.STEADY
    assert scenario.assertions.availability[0].window is Window.OUTSIDE_FAULT
    assert scenario.load.flows == {"browse": 6, "order": 2, "status": 2}


def test_unknown_shape_names_line_and_field() -> None:
    error = _error(GOOD.replace("shape: steady", "shape: wobbly"))
    assert error.source == "bad.yaml"
    assert error.where == "4"
    assert "load.shape" in error.problem
    assert "steady" in error.problem  # the allowed values are listed


def test_misspelt_field_is_rejected_with_its_line() -> None:
    error = _error(GOOD.replace("max_ms: 500", "max_msec: 500"))
    assert error.where == "18"
    assert "max_msec" in error.problem
    assert "spelling" in error.fix


def test_missing_field_names_the_parent_line() -> None:
    error = _error(GOOD.replace("  duration_s: 60\n", ""))
    assert "load.duration_s" in error.problem
    assert error.fix == "add this field"


def test_fault_window_assertions_need_chaos() -> None:
    no_chaos = (
        GOOD.split("chaos:")[0]
        + "assertions:\n  availability:\n    - {min_success_ratio: 0.9, window: during_fault}\n"
    )
    error = _error(no_chaos)
    assert "no chaos section" in error.problem


def test_fault_must_fit_inside_the_load() -> None:
    error = _error(GOOD.replace("fault_duration_s: 30", "fault_duration_s: 55"))
    assert "must fit inside" in error.problem


def test_missing_experiment_file() -> None:
    error = _error(GOOD.replace("service-killed.yaml", "nope.yaml"))
    assert error.where == "9"
    assert "does not exist" in error.problem


def test_rate_is_required() -> None:
    # The achieved volume is asserted against rate × users over time: a scenario needs a rate.
    error = _error(GOOD.replace("  rate: 8\n", ""))
    assert "load.rate is required" in error.problem


def test_spike_needs_its_fields() -> None:
    error = _error(GOOD.replace("shape: steady", "shape: spike"))
    assert "spike_users" in error.problem


def test_bad_yaml_is_one_line() -> None:
    error = _error("name: x\nload: [\n")
    assert "not valid YAML" in error.problem
    assert "\n" not in error.one_line()


def test_file_name_must_match(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(GOOD)
    with pytest.raises(ScenarioInputError, match="set name: other"):
        load_scenario(path)


def test_undeclared_alert_is_bad_input() -> None:
    scenario = parse_scenario(GOOD, "good.yaml")
    with pytest.raises(ScenarioInputError, match="not declared"):
        check_alert_names(scenario, Path("good.yaml"), {"ServiceDown", "SomethingElse"})
    check_alert_names(scenario, Path("good.yaml"), {"ServiceDown", "HighLatency"})


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.stem)
def test_catalog_scenarios_validate(path: Path) -> None:
    load_scenario(path)
