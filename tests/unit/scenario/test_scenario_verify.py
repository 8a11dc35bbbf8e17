"""Verifier on recorded runs: a healthy run passes, and each broken promise makes the run FAIL."""

from __future__ import annotations

import pytest

from testbed.scenario.collect import increase_of, planned_requests
from testbed.scenario.record import ActiveAlert, AlertEvent, LocustOutcome, RequestSample, RunRecord
from testbed.scenario.spec import LoadShape, Scenario, parse_scenario
from testbed.scenario.verify import all_passed, expected_alert_seen, percentile, verify

T0 = 1_800_000_000.0
FAULT = (T0 + 20, T0 + 50)
INVENTORY = {"job": "inventory", "severity": "critical"}

SPEC = """\
name: recorded
load: {shape: steady, users: 2, duration_s: 80, rate: 5}
chaos: {experiment: chaos/experiments/service-killed.yaml, start_at_s: 20, fault_duration_s: 30}
recovery_grace_s: 10
assertions:
  availability:
    - {min_success_ratio: 0.99, window: outside_fault}
    - {min_success_ratio: 0.2, window: during_fault}
  latency:
    - {percentile: 95, max_ms: 300, window: outside_fault}
  logs: {min_completeness: 1.0, max_lag_s: 20}
  alerts_expected:
    - {name: TargetDown, labels: {job: inventory}, max_time_to_fire_s: 30, max_time_to_resolve_s: 40}
  alerts_forbidden: [HighLatency]
  cross_signal: {tolerance: 0.02}
"""


@pytest.fixture
def scenario() -> Scenario:
    return parse_scenario(SPEC, "recorded.yaml")


def _healthy_run() -> RunRecord:
    """80 s of load, 5 req/s; during the fault half the requests fail with 503 (still logged)."""
    requests = []
    for i in range(400):
        t = T0 + i * 0.2
        in_fault = FAULT[0] <= t < FAULT[1]
        failed = in_fault and i % 2 == 0
        requests.append(
            RequestSample(
                id=f"run-{i}",
                flow="browse",
                name="/products",
                t=t,
                latency_ms=40.0 + (i % 10),
                ok=not failed,
                status=503 if failed else 200,
            )
        )
    return RunRecord(
        scenario="recorded",
        run_id="run",
        started_at=T0,
        ended_at=T0 + 80,
        fault_window=FAULT,
        chaos_status="completed",
        requests=requests,
        log_sightings={r.id: r.t + 5.0 for r in requests},
        prometheus_request_count=401.0,
        es_access_log_count=400,
        alerts=[
            AlertEvent(name="TargetDown", state="firing", at=FAULT[0] + 18, labels=INVENTORY),
            AlertEvent(name="TargetDown", state="resolved", at=FAULT[1] + 25, labels=INVENTORY),
        ],
        # Locust exits 1 because requests failed during the fault: that is a clean exit.
        locust=LocustOutcome(
            exit_code=1,
            requests=400,
            failures=sum(1 for r in requests if not r.ok),
            planned_requests=400.0,
        ),
    )


def _failed(results: list, kind: str) -> list:
    return [r for r in results if not r.passed and r.kind == kind]


def test_healthy_run_passes(scenario: Scenario) -> None:
    results = verify(scenario, _healthy_run())
    assert all_passed(results), [r for r in results if not r.passed]
    assert len(results) == 14


def test_breached_latency_slo_fails(scenario: Scenario) -> None:
    record = _healthy_run()
    for r in record.requests[300:330]:  # 30 slow requests out of ~290 outside the fault: above p95
        r.latency_ms = 900.0
    results = verify(scenario, record)
    assert not all_passed(results)
    [breach] = _failed(results, "latency")
    assert breach.observed == "900.0 ms"


def test_errors_outside_the_fault_breach_availability(scenario: Scenario) -> None:
    record = _healthy_run()
    for r in record.requests[:10]:  # before the fault: 10 of ~290 outside the fault fail
        r.ok = False
        r.status = 500
    [breach] = _failed(verify(scenario, record), "availability")
    assert "outside fault" in breach.name


def test_missing_alert_fails(scenario: Scenario) -> None:
    record = _healthy_run()
    record.alerts = []
    failures = _failed(verify(scenario, record), "alert")
    assert [f.observed for f in failures] == ["never fired"]


def test_late_alert_and_no_resolve_fail(scenario: Scenario) -> None:
    record = _healthy_run()
    record.alerts = [AlertEvent(name="TargetDown", state="firing", at=FAULT[0] + 45, labels=INVENTORY)]
    observed = sorted(f.observed for f in _failed(verify(scenario, record), "alert"))
    assert observed == ["45.0 s", "never resolved"]


def test_alert_before_the_fault_fails(scenario: Scenario) -> None:
    record = _healthy_run()
    record.alerts.insert(0, AlertEvent(name="TargetDown", state="firing", at=T0 + 5, labels=INVENTORY))
    [failure] = _failed(verify(scenario, record), "alert")
    assert failure.detail == "fired before the fault started"


def test_alert_with_other_labels_does_not_count(scenario: Scenario) -> None:
    record = _healthy_run()
    for event in record.alerts:
        event.labels = {"job": "payments"}
    failures = _failed(verify(scenario, record), "alert")
    assert [f.observed for f in failures] == ["never fired"]


def test_one_lost_log_fails(scenario: Scenario) -> None:
    record = _healthy_run()
    del record.log_sightings["run-123"]
    [failure] = _failed(verify(scenario, record), "logs")
    assert "run-123" in failure.detail
    assert failure.observed == "0.9975"


def test_slow_logs_fail(scenario: Scenario) -> None:
    record = _healthy_run()
    record.log_sightings["run-7"] += 60
    [failure] = _failed(verify(scenario, record), "logs")
    assert failure.name.startswith("log lag")


def test_refused_connections_need_no_log(scenario: Scenario) -> None:
    record = _healthy_run()
    refused = record.requests[150]  # inside the fault window
    refused.ok, refused.status = False, 0
    del record.log_sightings[refused.id]
    record.prometheus_request_count, record.es_access_log_count = 399.0, 399
    assert all_passed(verify(scenario, record))


def test_forbidden_alert_fails(scenario: Scenario) -> None:
    record = _healthy_run()
    record.alerts.append(AlertEvent(name="HighLatency", state="firing", at=T0 + 60))
    [failure] = _failed(verify(scenario, record), "alert_forbidden")
    assert failure.observed == "1 firings, active: never"


def _active(name: str, phase: str, source: str = "alertmanager") -> ActiveAlert:
    return ActiveAlert.model_validate(
        {
            "name": name,
            "labels": {"alertname": name, "job": "node"},
            "source": source,
            "phase": phase,
            "at": T0,
        }
    )


def test_forbidden_alert_already_firing_before_the_run_fails(scenario: Scenario) -> None:
    # The sink hears nothing new (repeat_interval 4 h): only the snapshot at run start shows it.
    record = _healthy_run()
    record.active_alerts = [_active("HighLatency", "start"), _active("HighLatency", "end", "prometheus")]
    [failure] = _failed(verify(scenario, record), "alert_forbidden")
    assert failure.observed == "0 firings, active: start, end"
    assert "already active at run start in alertmanager (job=node)" in failure.detail
    assert "still active at run end in prometheus" in failure.detail


def test_forbidden_alert_active_only_in_prometheus_during_the_run_fails(scenario: Scenario) -> None:
    record = _healthy_run()
    record.active_alerts = [_active("HighLatency", "during", "prometheus"), _active("TargetDown", "during")]
    [failure] = _failed(verify(scenario, record), "alert_forbidden")
    assert "HighLatency" in failure.name and "during the run in prometheus" in failure.detail


def test_unreadable_alert_snapshot_fails_forbidden_alerts(scenario: Scenario) -> None:
    record = _healthy_run()
    record.alert_read_failures = ["during: Alertmanager alerts unavailable: refused"]
    assert all_passed(verify(scenario, record))  # chaos may stop Alertmanager mid-run
    record.alert_read_failures.append("end: Prometheus ALERTS unavailable: refused")
    [failure] = _failed(verify(scenario, record), "alert_forbidden")
    assert failure.observed == "unknown" and "end: Prometheus" in failure.detail


def test_locust_crash_fails_the_run(scenario: Scenario) -> None:
    record = _healthy_run()
    record.requests = record.requests[:150]  # killed 30 s in: no summary CSVs were written
    record.locust = LocustOutcome(exit_code=-9, planned_requests=400.0)
    failures = {f.name: f.observed for f in _failed(verify(scenario, record), "load")}
    assert failures["Locust exited cleanly"] == "exit -9"
    assert (
        failures["Locust's counts match the request records"] == "no locust_stats.csv / locust_failures.csv"
    )
    assert failures["load achieved ≥ 90% of the planned volume"] == "150 requests (37.5%)"


def test_locust_stopped_by_the_runner_fails(scenario: Scenario) -> None:
    record = _healthy_run()
    assert record.locust is not None
    record.locust.exit_code = None
    [failure] = _failed(verify(scenario, record), "load")
    assert failure.observed == "stopped by the runner (overran)"


def test_locust_exceptions_fail_the_run(scenario: Scenario) -> None:
    record = _healthy_run()
    assert record.locust is not None
    record.locust.exceptions = ["3× KeyError('id') (host:1)"]
    names = {f.name for f in _failed(verify(scenario, record), "load")}
    assert names == {"Locust raised no exceptions", "Locust exited cleanly"}


def test_exit_1_without_failures_is_not_clean(scenario: Scenario) -> None:
    record = _healthy_run()
    assert record.locust is not None
    record.locust.failures = 0
    names = {f.name for f in _failed(verify(scenario, record), "load")}
    assert names == {"Locust exited cleanly", "Locust's counts match the request records"}


def test_under_ninety_percent_of_planned_volume_fails(scenario: Scenario) -> None:
    record = _healthy_run()
    assert record.locust is not None
    record.locust.planned_requests = 450.0  # 400 achieved = 88.9 %
    [failure] = _failed(verify(scenario, record), "load")
    assert failure.observed == "400 requests (88.9%)"
    record.locust.planned_requests = 444.0  # 90.1 %
    assert all_passed(verify(scenario, record))


def test_planned_volume_follows_the_shape() -> None:
    steady = parse_scenario(SPEC, "recorded.yaml").load
    assert planned_requests(steady) == pytest.approx(400.0)  # 5 req/s × 80 s
    spike = steady.model_copy(
        update={
            "shape": LoadShape.SPIKE,
            "users": 2,
            "spike_users": 6,
            "spike_at_s": 20,
            "spike_duration_s": 10,
        }
    )
    # 70 s at 2 users + 10 s at 6 users, 2.5 req/s per user.
    assert planned_requests(spike) == pytest.approx(70 * 5 + 10 * 15)


def test_counter_increase_survives_resets_and_new_series() -> None:
    start = 100.0
    # baseline 1000 before the run; +50; restart (reset) to 7; +13
    assert increase_of([(95, 1000), (105, 1050), (110, 7), (115, 20)], start) == 70
    # a series born during the run (a new status label, a new instance) counts from 0
    assert increase_of([(105, 4), (110, 9)], start) == 9
    # a series that did not move counts nothing, even when its value is large
    assert increase_of([(90, 6720), (105, 6720)], start) == 0


def test_cross_signal_disagreement_fails(scenario: Scenario) -> None:
    record = _healthy_run()
    record.es_access_log_count = 380  # 5 % fewer access logs than requests
    [failure] = _failed(verify(scenario, record), "cross_signal")
    assert "5.24%" in failure.detail  # prometheus 401 vs elasticsearch 380


def test_uncollected_signal_fails(scenario: Scenario) -> None:
    record = _healthy_run()
    record.prometheus_request_count = None
    [failure] = _failed(verify(scenario, record), "cross_signal")
    assert "prometheus" in failure.detail


def test_deviated_experiment_fails_even_with_good_numbers(scenario: Scenario) -> None:
    record = _healthy_run()
    record.chaos_deviated = True
    [failure] = _failed(verify(scenario, record), "chaos")
    assert "deviated" in failure.observed


def test_missing_fault_window_fails_window_assertions(scenario: Scenario) -> None:
    record = _healthy_run()
    record.fault_window = None
    record.chaos_status = "aborted"
    kinds = {r.kind for r in verify(scenario, record) if not r.passed}
    assert kinds == {"chaos", "availability", "latency", "alert"}


def test_empty_run_fails(scenario: Scenario) -> None:
    record = _healthy_run()
    record.requests = []
    assert not all_passed(verify(scenario, record))


def test_record_round_trips(tmp_path) -> None:
    record = _healthy_run()
    path = tmp_path / "record.json"
    record.save(path)
    assert RunRecord.load(path) == record


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 95) == 95.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0], 50) == 3.0


def test_runner_stops_waiting_only_once_expected_alerts_are_complete(scenario: Scenario) -> None:
    record = _healthy_run()
    [alert] = scenario.assertions.alerts_expected
    assert expected_alert_seen(record.alerts, alert, T0)
    assert not expected_alert_seen(record.alerts[:1], alert, T0)  # fired, resolve still awaited
    assert not expected_alert_seen([], alert, T0)


def test_chaos_probe_requests_are_taken_out_of_the_prometheus_count(scenario: Scenario) -> None:
    record = _healthy_run()
    record.prometheus_request_count = 420.0  # 400 from Locust + 20 from the steady-state probes
    assert len(_failed(verify(scenario, record), "cross_signal")) == 1  # 5 % apart
    record.probe_requests = 20
    [result] = [r for r in verify(scenario, record) if r.kind == "cross_signal"]
    assert result.passed and "prometheus 400" in result.observed
    assert "20 chaos probe requests" in result.detail


def test_locust_may_miss_only_the_requests_answered_after_the_planned_stop(scenario: Scenario) -> None:
    record = _healthy_run()
    assert record.locust is not None
    # 80 s planned from the first request at T0: the 5 answered from T0 + 79 s on may be missing.
    record.locust.requests = 395
    assert all_passed(verify(scenario, record))
    record.locust.requests = 394
    [failure] = _failed(verify(scenario, record), "load")
    assert failure.name == "Locust's counts match the request records"


def test_log_lag_p99_counts_the_tail_not_one_straggler() -> None:
    spec = SPEC.replace(
        "logs: {min_completeness: 1.0, max_lag_s: 20}", "logs: {max_lag_s: 20, max_lag_p99_s: 2}"
    )
    heavy = parse_scenario(spec, "recorded.yaml")
    record = _healthy_run()
    record.log_sightings = {r.id: r.t + 1.0 for r in record.requests}
    record.log_sightings["run-7"] += 10  # one straggler in 400: under the worst-case limit, not the p99
    assert not [r for r in verify(heavy, record) if r.kind == "logs" and not r.passed]
    for r in record.requests[:8]:  # 2 % of the requests 3 s late: the p99 moves past 2 s
        record.log_sightings[r.id] = r.t + 3.0
    [failure] = _failed(verify(heavy, record), "logs")
    assert failure.name == "log lag p99 ≤ 2 s" and failure.observed == "3.00 s"


def test_latency_with_no_answered_request_fails(scenario: Scenario) -> None:
    # Every request refused (status 0): no speed to judge, so the latency SLO fails rather than passes.
    record = _healthy_run()
    for r in record.requests:
        r.status, r.ok = 0, False
    latency = next(r for r in verify(scenario, record) if r.kind == "latency")
    assert not latency.passed
    assert (latency.observed, latency.detail) == ("0 requests", "no answered request fell in this window")
