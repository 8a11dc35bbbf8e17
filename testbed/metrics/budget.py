"""How long an alert may take to reach the alert sink, computed from the policy (tests and figures).

Detection: the symptom shows at the next scrape, is seen at the next rule evaluation, must hold for
the alert's ``for``, then waits ``group_wait`` in Alertmanager. Resolution: next scrape and evaluation,
then the group's next flush (``group_interval``). A margin covers delivery and clock jitter.
"""

from __future__ import annotations

from testbed.metrics.policy import Policy, load_policy, parse_duration
from testbed.metrics.rules import FAST_BURN

MARGIN_S = 10.0


def detection_budget_s(for_: str, policy: Policy | None = None, margin_s: float = MARGIN_S) -> float:
    policy = policy or load_policy()
    return (
        parse_duration(policy.scrape_interval)
        + parse_duration(policy.evaluation_interval)
        + parse_duration(for_)
        + parse_duration(policy.alertmanager.group_wait)
        + margin_s
    )


def resolution_budget_s(
    policy: Policy | None = None, margin_s: float = MARGIN_S, settle_s: float = 0.0
) -> float:
    """``settle_s``: how long the condition itself takes to clear (e.g. a rate window draining)."""
    policy = policy or load_policy()
    return (
        parse_duration(policy.scrape_interval)
        + parse_duration(policy.evaluation_interval)
        + parse_duration(policy.alertmanager.group_interval)
        + settle_s
        + margin_s
    )


def fast_burn_detection_budget_s(
    error_budget: float, error_share: float = 1.0, policy: Policy | None = None, margin_s: float = MARGIN_S
) -> float:
    """With ``error_share`` of requests failing after a healthy period, the long window's error ratio
    crosses 14.4 x budget after long_window x 14.4 x budget / error_share; the short window is faster."""
    policy = policy or load_policy()
    long_window = parse_duration(policy.scaled_window("1h"))
    fill_s = long_window * 14.4 * error_budget / error_share
    return fill_s + detection_budget_s("0s", policy, margin_s)


def fast_burn_resolution_budget_s(policy: Policy | None = None, margin_s: float = MARGIN_S) -> float:
    """Once errors stop, each condition clears when its short window has drained: the longest short
    window of the fast-burn pairs (6x over 6h/30m, scaled) bounds it."""
    policy = policy or load_policy()
    longest_short = max(parse_duration(policy.scaled_window(short)) for _, _, short in FAST_BURN)
    return resolution_budget_s(policy, margin_s, settle_s=longest_short)
