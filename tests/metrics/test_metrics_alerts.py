"""Alert round trips on the live native stack: symptom -> Prometheus -> Alertmanager -> alert sink.

Each test measures time-to-detect and time-to-resolve against a budget written here as a number
(never computed from stack/prometheus/policy.yaml or the rules under test: a test whose expectation
comes from the config it tests moves with it) and appends them to results/metrics-alert-timings.jsonl
(figures for bench/RESULTS-metrics.md).
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

import pytest

from testbed.context import RenderContext
from testbed.metrics.alertmanager import DATABASE_DOWNSTREAM_ALERTS
from testbed.metrics.client import prometheus_client
from testbed.metrics.policy import load_slos
from testbed.metrics.probes import AlertSink, clear_faults, now, set_faults, shop_traffic, wait_quiet
from testbed.native.control import NativeStack
from testbed.settings import REPO_ROOT

pytestmark = [pytest.mark.native, pytest.mark.slow]

BASELINE_S = float(os.environ.get("TESTBED_METRICS_BASELINE_S", "150"))
TIMINGS = REPO_ROOT / "results" / "metrics-alert-timings.jsonl"

# Budgets: what we promise, written down (seconds), never computed from policy.yaml or the rules under
# test, so a change of `for`, group_wait or a rule breaks a promise instead of silently moving it.
# Written from the config of their day: scrape 5 s + evaluation 5 s + the rule's `for` + group_wait 5 s
# + 10 s margin to detect; scrape + evaluation + group_interval 10 s + margin to resolve.
TARGET_DOWN_DETECT_S = 35.0  # for: 10s
DATABASE_DOWN_DETECT_S = 25.0  # for: 0s
RESOLVE_S = 30.0
# /orders availability SLO (1 % error budget) at 100 % errors: the scaled 1-h window (240 s) crosses
# 14.4 × budget after ~35 s, + 25 s as above.
FAST_BURN_DETECT_S = 60.0
FAST_BURN_RESOLVE_S = 150.0  # the longest scaled short window (120 s) draining + 30 s as above


def record_timing(alert: str, phase: str, seconds: float, budget_s: float) -> None:
    TIMINGS.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "alert": alert,
        "phase": phase,
        "seconds": round(seconds, 1),
        "budget_s": budget_s,
        "at": now().isoformat(),
    }
    with Path(TIMINGS).open("a") as fh:
        fh.write(json.dumps(entry) + "\n")


def test_healthy_load_raises_no_alert(native_stack: RenderContext, sink: AlertSink, prom) -> None:
    # Judged: alerts that start during the healthy period. An alert still active from before (a slow SLO
    # window burnt by an earlier run whose data the stack kept: seen firing at start in CI) is not judged;
    # this test runs first on its stack (tests/conftest.py), so a short wait for quiet is enough.
    wait_quiet(prom, [".+"], timeout_s=60)
    started = now()
    with shop_traffic(native_stack) as traffic:
        time.sleep(BASELINE_S)
    assert traffic.statuses.get(0, 0) == 0, f"traffic failed to connect: {traffic.statuses}"
    assert all(status < 500 for status in traffic.statuses), traffic.statuses
    notified = [
        (a["name"], a["state"], a["labels"])
        for a in sink.alerts(since=started)
        if datetime.fromisoformat(a["starts_at"]) >= started
    ]
    assert not notified, f"alerts notified under healthy load: {notified}"
    with prometheus_client(native_stack) as client:
        active = client.get("/api/v1/alerts").json()["data"]["alerts"]
    new = [(a["labels"], a["state"]) for a in active if datetime.fromisoformat(a["activeAt"]) >= started]
    assert not new, f"alerts pending or firing under healthy load: {new}"


def test_killed_instance_fires_target_down_and_resolves(
    native_stack: RenderContext, sink: AlertSink, control: NativeStack
) -> None:
    instance = f"127.0.0.1:{native_stack.port('gateway', 1)}"
    detect_budget = TARGET_DOWN_DETECT_S
    resolve_budget = RESOLVE_S

    started = now()
    control.kill("gateway-1")
    try:
        fired, detect_s = sink.wait_for(
            "TargetDown",
            "firing",
            started,
            3 * detect_budget,
            lambda a: a["labels"].get("instance") == instance,
        )
    finally:
        control.start("gateway-1")  # waits until healthy: resolution counts from there
        restarted = now()
    assert fired is not None, f"TargetDown for {instance} never reached the alert sink"
    assert fired["severity"] == "critical" and fired["receiver"] == "sink-page"
    record_timing("TargetDown", "detect", detect_s, detect_budget)
    assert detect_s <= detect_budget, f"detected after {detect_s:.0f} s, budget {detect_budget:.0f} s"

    resolved, resolve_s = sink.wait_for(
        "TargetDown",
        "resolved",
        restarted,
        3 * resolve_budget,
        lambda a: a["labels"].get("instance") == instance,
    )
    assert resolved is not None, "the resolved notification never arrived"
    record_timing("TargetDown", "resolve", resolve_s, resolve_budget)
    assert resolve_s <= resolve_budget, f"resolved after {resolve_s:.0f} s, budget {resolve_budget:.0f} s"


def test_injected_errors_fire_the_fast_burn_slo_alert_and_clear(
    native_stack: RenderContext, sink: AlertSink, prom
) -> None:
    slo = next(s for s in load_slos().slos if s.route == "/orders" and s.sli == "availability")
    detect_budget = FAST_BURN_DETECT_S
    resolve_budget = FAST_BURN_RESOLVE_S

    def is_this_slo(alert: dict) -> bool:
        return alert["labels"].get("slo") == slo.name

    leftover = wait_quiet(prom, ["SLOBurnRateFast"])
    assert not leftover, f"an earlier test's burn is still active, no new firing could be seen: {leftover}"

    # The fault goes on orders: the gateway's POST /orders then fails with its route label intact
    # (errors injected on the gateway itself are answered before routing, as route "<unmatched>").
    with shop_traffic(native_stack):
        time.sleep(10)  # the healthy traffic the windows compare against
        started = now()
        set_faults(native_stack, "orders", error_rate=1.0, ttl_s=600)
        try:
            fired, detect_s = sink.wait_for(
                "SLOBurnRateFast", "firing", started, 3 * detect_budget, is_this_slo
            )
        finally:
            cleared = now()
            clear_faults(native_stack, "orders")
        assert fired is not None, f"SLOBurnRateFast for {slo.name} never reached the alert sink"
        assert fired["severity"] == "critical"
        record_timing("SLOBurnRateFast", "detect", detect_s, round(detect_budget, 1))
        assert detect_s <= detect_budget, f"detected after {detect_s:.0f} s, budget {detect_budget:.0f} s"

        resolved, resolve_s = sink.wait_for(
            "SLOBurnRateFast", "resolved", cleared, 3 * resolve_budget, is_this_slo
        )
    assert resolved is not None, "the resolved notification never arrived"
    record_timing("SLOBurnRateFast", "resolve", resolve_s, resolve_budget)
    assert resolve_s <= resolve_budget, f"resolved after {resolve_s:.0f} s, budget {resolve_budget:.0f} s"


def test_database_down_fires_and_inhibits_downstream_alerts(
    native_stack: RenderContext, sink: AlertSink, control: NativeStack, alertmanager, prom
) -> None:
    detect_budget = DATABASE_DOWN_DETECT_S
    # Long enough for the downstream error alerts to fire in Prometheus (and be inhibited).
    downstream_wait_s = 3 * 60.0
    min_observe_s = 60.0

    # Start from quiet: an error alert left over from an earlier test is no evidence either way.
    leftover = wait_quiet(prom, [name for name in DATABASE_DOWNSTREAM_ALERTS if name != "SLOBurnRateSlow"])
    assert not leftover, f"alerts of an earlier test are still active: {leftover}"

    with shop_traffic(native_stack):
        time.sleep(10)
        started = now()
        control.stop("postgresql")
        try:
            fired, detect_s = sink.wait_for("PostgresDown", "firing", started, 3 * detect_budget)
            assert fired is not None, "PostgresDown never reached the alert sink"
            record_timing("PostgresDown", "detect", detect_s, detect_budget)
            assert detect_s <= detect_budget, f"detected after {detect_s:.0f} s, budget {detect_budget:.0f} s"

            # Watch long enough for the outage's own downstream alerts to fire (not ones left over
            # from earlier tests): they must show in Alertmanager as inhibited, never in the sink.
            observed_from = time.monotonic()
            inhibited: list[dict] = []
            while time.monotonic() - observed_from < downstream_wait_s:
                alerts = alertmanager.get("/api/v2/alerts", params={"inhibited": "true"}).json()
                inhibited = [
                    a
                    for a in alerts
                    if a["status"]["inhibitedBy"]
                    and a["labels"]["alertname"] in DATABASE_DOWNSTREAM_ALERTS
                    and datetime.fromisoformat(a["startsAt"]) >= started
                ]
                if inhibited and time.monotonic() - observed_from >= min_observe_s:
                    break
                time.sleep(2)
            # Alerts the outage caused (a slow burn from an earlier test may still be going on).
            notified = [
                (a["name"], a["labels"].get("service"), a["starts_at"])
                for a in sink.alerts(since=started)
                if a["name"] in DATABASE_DOWNSTREAM_ALERTS
                and datetime.fromisoformat(a["starts_at"]) >= started
            ]
        finally:
            control.start("postgresql")
            restarted = now()
    assert inhibited, "no downstream alert fired while PostgreSQL was down: the inhibition was not exercised"
    assert not notified, f"inhibited alerts were notified: {notified}"

    resolve_budget = RESOLVE_S
    resolved, resolve_s = sink.wait_for("PostgresDown", "resolved", restarted, 3 * resolve_budget)
    assert resolved is not None, "PostgresDown never resolved"
    record_timing("PostgresDown", "resolve", resolve_s, resolve_budget)
    assert resolve_s <= resolve_budget, f"resolved after {resolve_s:.0f} s, budget {resolve_budget:.0f} s"
