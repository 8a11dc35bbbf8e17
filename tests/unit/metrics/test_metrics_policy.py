from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from testbed.metrics.policy import (
    POLICY_FILE,
    Policy,
    SloSpec,
    format_duration,
    load_policy,
    load_slos,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5), ("1m30s", 90), ("1h", 3600), ("7d", 604800), ("0s", 0), ("4h48m", 17280)]
)
def test_durations_round_trip(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert format_duration(seconds) == text


@pytest.mark.parametrize("bad", ["", "5", "1.5m", "5 minutes", "m"])
def test_bad_duration_names_the_expected_form(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a duration like"):
        parse_duration(bad)


def test_burn_rate_windows_scale_by_one_factor_with_a_floor() -> None:
    policy = load_policy()
    assert policy.window_scale == pytest.approx(1 / 15)
    assert policy.scaled_window("1h") == "4m"
    assert policy.scaled_window("3d") == "4h48m"
    # 5m / 15 = 20s = 4 scrape intervals: exactly the floor.
    assert policy.scaled_window("5m") == "20s"
    assert policy.scaled_window("1m") == "20s"


def _policy_with(**changes: object) -> dict[str, object]:
    data = yaml.safe_load(POLICY_FILE.read_text())
    data.update(changes)
    return data


def test_production_scale_keeps_the_workbook_windows() -> None:
    policy = Policy.model_validate(_policy_with(burn_rate_window_scale="1"))
    assert [policy.scaled_window(w) for w in ("1h", "5m", "6h", "30m")] == ["1h", "5m", "6h", "30m"]


@pytest.mark.parametrize("scale", ["0", "2", "abc", "1/0"])
def test_bad_scale_is_rejected(scale: str) -> None:
    with pytest.raises(ValidationError, match="burn_rate_window_scale"):
        Policy.model_validate(_policy_with(burn_rate_window_scale=scale))


def test_unknown_policy_key_is_rejected() -> None:
    with pytest.raises(ValidationError, match="scrape_intervall"):
        Policy.model_validate(_policy_with(scrape_intervall="5s"))


def test_missing_for_duration_names_the_key_to_add() -> None:
    with pytest.raises(KeyError, match=r"for\.nonexistent"):
        load_policy().for_duration("nonexistent")


def test_slos_are_valid_and_latency_thresholds_are_histogram_buckets() -> None:
    from services.common.metrics import LATENCY_BUCKETS

    spec = load_slos()
    assert spec.slos
    for slo in spec.slos:
        if slo.sli == "latency":
            assert slo.threshold_seconds in LATENCY_BUCKETS, f"{slo.name}: threshold must be a bucket bound"


def test_slo_spec_errors_are_explicit(tmp_path: Path) -> None:
    base = {"name": "x", "service": "gateway", "route": "/r", "method": "GET", "objective": 0.99}
    with pytest.raises(ValidationError, match="needs threshold_seconds"):
        SloSpec.model_validate({"period": "30d", "slos": [{**base, "sli": "latency"}]})
    with pytest.raises(ValidationError, match="between 0 and 1"):
        SloSpec.model_validate({"period": "30d", "slos": [{**base, "sli": "availability", "objective": 99}]})
    with pytest.raises(ValidationError, match="unique"):
        SloSpec.model_validate({"period": "30d", "slos": [{**base, "sli": "availability"}] * 2})
