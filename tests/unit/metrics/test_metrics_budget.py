from __future__ import annotations

import pytest

from testbed.metrics.budget import (
    MARGIN_S,
    detection_budget_s,
    fast_burn_detection_budget_s,
    fast_burn_resolution_budget_s,
    resolution_budget_s,
)
from testbed.metrics.policy import load_policy, parse_duration


def test_detection_budget_adds_scrape_evaluation_for_and_group_wait() -> None:
    policy = load_policy()
    expected = (
        parse_duration(policy.scrape_interval)
        + parse_duration(policy.evaluation_interval)
        + 10
        + parse_duration(policy.alertmanager.group_wait)
        + MARGIN_S
    )
    assert detection_budget_s("10s", policy) == expected


def test_resolution_budget_waits_for_the_next_group_flush() -> None:
    policy = load_policy()
    assert resolution_budget_s(policy) == pytest.approx(
        parse_duration(policy.scrape_interval)
        + parse_duration(policy.evaluation_interval)
        + parse_duration(policy.alertmanager.group_interval)
        + MARGIN_S
    )


def test_fast_burn_budget_grows_with_the_error_budget_and_shrinks_with_the_error_share() -> None:
    tight, loose = fast_burn_detection_budget_s(0.005), fast_burn_detection_budget_s(0.01)
    assert tight < loose
    assert fast_burn_detection_budget_s(0.01, error_share=0.5) > loose
    # 1 h scaled by 1/15 = 240 s; 240 s x 14.4 x 1% = 34.56 s to cross the threshold.
    assert loose == pytest.approx(34.56 + detection_budget_s("0s"))
    assert fast_burn_resolution_budget_s() > resolution_budget_s()
