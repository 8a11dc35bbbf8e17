"""Checks a recorded run against a scenario's assertions: pure logic, no I/O.

Each assertion gives one ``AssertionResult``; the run passes only when every one passed. Requests
that got no HTTP response (status 0: connection refused or timed out) count as failures for
availability but cannot have an access log, so log completeness and the cross-signal counts use
only the requests the gateway answered.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from pydantic import BaseModel

from testbed.scenario.record import AlertEvent, RequestSample, RunRecord
from testbed.scenario.spec import (
    AvailabilitySLO,
    CrossSignal,
    ExpectedAlert,
    LatencySLO,
    LogAssertion,
    Scenario,
    Window,
)


class AssertionResult(BaseModel):
    kind: str  # availability, latency, logs, alert, alert_forbidden, cross_signal, chaos
    name: str
    passed: bool
    expected: str
    observed: str
    detail: str = ""


# A run that achieved less than this share of its planned requests did not test what it promised.
MIN_VOLUME_RATIO = 0.9


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (what Locust reports), ``pct`` in (0, 100]."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _window_bounds(record: RunRecord, scenario: Scenario, window: Window) -> list[tuple[float, float]] | None:
    """Time spans (inclusive start, exclusive end) a window covers; None if the fault window is unknown."""
    everything = (record.started_at, math.inf)
    if window is Window.ALL:
        return [everything]
    if record.fault_window is None:
        return None
    fault_start, fault_end = record.fault_window
    if window is Window.DURING_FAULT:
        return [(fault_start, fault_end)]
    return [(record.started_at, fault_start), (fault_end + scenario.recovery_grace_s, math.inf)]


def _select(
    requests: Iterable[RequestSample], spans: list[tuple[float, float]], flow: str | None
) -> list[RequestSample]:
    return [
        r
        for r in requests
        if (flow is None or r.flow == flow) and any(start <= r.t < end for start, end in spans)
    ]


def _label(window: Window, flow: str | None) -> str:
    return f"{flow or 'all flows'}, {window.value.replace('_', ' ')}"


def _windowed(
    record: RunRecord,
    scenario: Scenario,
    kind: str,
    name: str,
    expected: str,
    slo: AvailabilitySLO | LatencySLO,
) -> list[RequestSample] | AssertionResult:
    """The requests an SLO judges (its window and flow), or the failed result saying why there are none."""
    spans = _window_bounds(record, scenario, slo.window)
    if spans is None:
        why = ("no fault window", "the chaos journal gave no fault window")
    else:
        selected = _select(record.requests, spans, slo.flow)
        if kind == "latency":
            # Latency is judged on answered requests: a refused connection's time says nothing about speed.
            selected = [r for r in selected if r.status != 0]
        if selected:
            return selected
        why = ("0 requests", f"no {'answered ' if kind == 'latency' else ''}request fell in this window")
    return AssertionResult(
        kind=kind, name=name, passed=False, expected=expected, observed=why[0], detail=why[1]
    )


def check_availability(record: RunRecord, scenario: Scenario, slo: AvailabilitySLO) -> AssertionResult:
    name = f"availability ≥ {slo.min_success_ratio:.2%} ({_label(slo.window, slo.flow)})"
    expected = f"≥ {slo.min_success_ratio:.4f}"
    selected = _windowed(record, scenario, "availability", name, expected, slo)
    if isinstance(selected, AssertionResult):
        return selected
    ok = sum(1 for r in selected if r.ok)
    ratio = ok / len(selected)
    return AssertionResult(
        kind="availability",
        name=name,
        passed=ratio >= slo.min_success_ratio,
        expected=expected,
        observed=f"{ratio:.4f}",
        detail=f"{ok}/{len(selected)} requests succeeded",
    )


def check_latency(record: RunRecord, scenario: Scenario, slo: LatencySLO) -> AssertionResult:
    name = f"p{slo.percentile:g} latency ≤ {slo.max_ms:g} ms ({_label(slo.window, slo.flow)})"
    expected = f"≤ {slo.max_ms:g} ms"
    selected = _windowed(record, scenario, "latency", name, expected, slo)
    if isinstance(selected, AssertionResult):
        return selected
    observed = percentile([r.latency_ms for r in selected], slo.percentile)
    return AssertionResult(
        kind="latency",
        name=name,
        passed=observed <= slo.max_ms,
        expected=expected,
        observed=f"{observed:.1f} ms",
        detail=f"over {len(selected)} answered requests",
    )


def check_logs(record: RunRecord, assertion: LogAssertion) -> list[AssertionResult]:
    answered = [r for r in record.requests if r.status != 0]
    lost = [r.id for r in answered if r.id not in record.log_sightings]
    completeness = (len(answered) - len(lost)) / len(answered) if answered else 0.0
    lost_detail = f"{len(lost)} lost" + (f", e.g. {', '.join(lost[:5])}" if lost else "")
    results = [
        AssertionResult(
            kind="logs",
            # The service is named: the runner matches Locust's request ids to the gateway's access logs.
            name=f"log completeness of gateway access logs ≥ {assertion.min_completeness:.2%}",
            passed=bool(answered) and completeness >= assertion.min_completeness,
            expected=f"≥ {assertion.min_completeness:.4f}",
            observed=f"{completeness:.4f}",
            detail=f"{len(answered) - len(lost)}/{len(answered)} answered requests found in Elasticsearch; "
            + lost_detail,
        )
    ]
    lags = [record.log_sightings[r.id] - r.t for r in answered if r.id in record.log_sightings]
    worst = max(lags) if lags else math.inf
    results.append(
        AssertionResult(
            kind="logs",
            name=f"log lag ≤ {assertion.max_lag_s:g} s",
            passed=worst <= assertion.max_lag_s,
            expected=f"≤ {assertion.max_lag_s:g} s",
            observed=f"{worst:.1f} s" if lags else "no logs found",
            detail=f"worst of {len(lags)} requests (request start → first seen in a search, polled every"
            f" 0.5 s)"
            + (f"; p50 {percentile(lags, 50):.2f} s, p99 {percentile(lags, 99):.2f} s" if lags else ""),
        )
    )
    if assertion.max_lag_p99_s is not None:
        p99 = percentile(lags, 99) if lags else math.inf
        results.append(
            AssertionResult(
                kind="logs",
                name=f"log lag p99 ≤ {assertion.max_lag_p99_s:g} s",
                passed=p99 <= assertion.max_lag_p99_s,
                expected=f"≤ {assertion.max_lag_p99_s:g} s",
                observed=f"{p99:.2f} s" if lags else "no logs found",
                detail=f"p99 of {len(lags)} requests' lag (request start → first seen in a search)",
            )
        )
    return results


def _matching(events: Iterable[AlertEvent], alert: ExpectedAlert) -> list[AlertEvent]:
    return sorted(
        (e for e in events if e.name == alert.name and alert.labels.items() <= e.labels.items()),
        key=lambda e: e.at,
    )


def expected_alert_seen(events: list[AlertEvent], alert: ExpectedAlert, since: float) -> bool:
    """Whether the alert fired (and resolved, when asserted): lets the runner stop waiting early."""
    matching = _matching(events, alert)
    firing = next((e for e in matching if e.state == "firing" and e.at >= since), None)
    if firing is None:
        return False
    if alert.max_time_to_resolve_s is None:
        return True
    return any(e.state == "resolved" and e.at > firing.at for e in matching)


def check_expected_alert(record: RunRecord, alert: ExpectedAlert) -> list[AssertionResult]:
    shown = alert.name + (
        f"{{{', '.join(f'{k}={v}' for k, v in alert.labels.items())}}}" if alert.labels else ""
    )
    fire_name = f"alert {shown} fires within {alert.max_time_to_fire_s:g} s"
    if record.fault_window is None:
        return [
            AssertionResult(
                kind="alert",
                name=fire_name,
                passed=False,
                expected=f"≤ {alert.max_time_to_fire_s:g} s",
                observed="no fault window",
                detail="the chaos journal gave no fault window",
            )
        ]
    fault_start, fault_end = record.fault_window
    events = _matching(record.alerts, alert)
    firing = next((e for e in events if e.state == "firing" and e.at >= record.started_at), None)
    if firing is None:
        return [
            AssertionResult(
                kind="alert",
                name=fire_name,
                passed=False,
                expected=f"≤ {alert.max_time_to_fire_s:g} s",
                observed="never fired",
                detail=f"no firing notification for {alert.name} reached the alert sink",
            )
        ]
    time_to_fire = firing.at - fault_start
    results = [
        AssertionResult(
            kind="alert",
            name=fire_name,
            passed=0 <= time_to_fire <= alert.max_time_to_fire_s,
            expected=f"≤ {alert.max_time_to_fire_s:g} s",
            observed=f"{time_to_fire:.1f} s",
            detail="fired before the fault started"
            if time_to_fire < 0
            else "from fault start to notification",
        )
    ]
    if alert.max_time_to_resolve_s is not None:
        resolve_name = f"alert {shown} resolves within {alert.max_time_to_resolve_s:g} s"
        resolved = next((e for e in events if e.state == "resolved" and e.at > firing.at), None)
        if resolved is None:
            results.append(
                AssertionResult(
                    kind="alert",
                    name=resolve_name,
                    passed=False,
                    expected=f"≤ {alert.max_time_to_resolve_s:g} s",
                    observed="never resolved",
                    detail="no resolved notification after it fired",
                )
            )
        else:
            time_to_resolve = resolved.at - fault_end
            results.append(
                AssertionResult(
                    kind="alert",
                    name=resolve_name,
                    passed=time_to_resolve <= alert.max_time_to_resolve_s,
                    expected=f"≤ {alert.max_time_to_resolve_s:g} s",
                    observed=f"{time_to_resolve:.1f} s",
                    detail="from fault end to resolved notification",
                )
            )
    return results


def check_forbidden_alert(record: RunRecord, name: str) -> AssertionResult:
    """Fails on any trace of the alert: a firing notification at the sink after load start, or the
    alert active in Alertmanager or Prometheus at run start, during or at run end. An alert already
    firing before the run fails it too (the sink would not hear of it again before repeat_interval),
    and so does a start or end snapshot that could not be read (unknown is not "did not fire")."""
    assertion = f"alert {name} does not fire"
    fired = [e for e in record.alerts if e.name == name and e.state == "firing" and e.at >= record.started_at]
    active = [a for a in record.active_alerts if a.name == name]
    unread = [why for why in record.alert_read_failures if why.split(":", 1)[0] in ("start", "end")]
    details = []
    if fired:
        details.append(f"sink notified it at +{fired[0].at - record.started_at:.1f} s")
    for phase, what in (
        ("start", "already active at run start"),
        ("during", "active during the run"),
        ("end", "still active at run end"),
    ):
        sightings = [a for a in active if a.phase == phase]
        if sightings:
            sources = sorted({a.source for a in sightings})
            labels = sorted({_labels(a.labels) for a in sightings})
            details.append(f"{what} in {' and '.join(sources)} ({'; '.join(labels[:3])})")
    if unread and not details:
        return AssertionResult(
            kind="alert_forbidden",
            name=assertion,
            passed=False,
            expected="0 firings, active: never",
            observed="unknown",
            detail="active alerts could not be read: " + "; ".join(unread),
        )
    return AssertionResult(
        kind="alert_forbidden",
        name=assertion,
        passed=not fired and not active,
        expected="0 firings, active: never",
        observed=f"{len(fired)} firings, active: "
        + (", ".join(p for p in ("start", "during", "end") if any(a.phase == p for a in active)) or "never"),
        detail="; ".join(details),
    )


# The load shape stops at its first tick (every second) after ``duration_s`` from its start, which comes
# just before the first request: a request answered from this long before the planned stop may be late.
SHAPE_STOP_MARGIN_S = 1.0


def _answered_after_the_planned_stop(requests: list[RequestSample], duration_s: float) -> int:
    """How many requests were answered after the shape's planned stop. They are recorded
    (requests/*.jsonl) but Locust's final stats may miss them (seen: 3 of 272, all answered after "Shape
    test stopping"; under load 6 of 156, including requests started during the stop itself)."""
    if not requests:
        return 0
    stop = min(r.t for r in requests) + duration_s - SHAPE_STOP_MARGIN_S
    return sum(1 for r in requests if r.t + r.latency_ms / 1000 >= stop)


def _counts_match(locust: int | None, recorded: int, in_flight: int) -> bool:
    return locust is not None and locust <= recorded <= locust + in_flight


def _labels(labels: dict[str, str]) -> str:
    shown = {k: v for k, v in labels.items() if k not in ("alertname", "alertstate")}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or "no labels"


def check_locust(record: RunRecord, scenario: Scenario) -> list[AssertionResult]:
    """Locust's own verdict: a clean exit, no exceptions in the load code, its counts equal to the
    request records the verifier judges, and at least ``MIN_VOLUME_RATIO`` of the planned volume."""
    outcome = record.locust
    if outcome is None:
        return [
            AssertionResult(
                kind="load",
                name="Locust exited cleanly",
                passed=False,
                expected="exit 0 (1 only with failed requests)",
                observed="not recorded",
                detail="the run recorded no Locust outcome",
            )
        ]
    answered_failures = sum(1 for r in record.requests if not r.ok)
    in_flight = _answered_after_the_planned_stop(record.requests, scenario.load.duration_s)
    code = outcome.exit_code
    # Locust exits 1 when any request failed (the fault window makes some fail): only then is 1 clean.
    clean = code == 0 or (code == 1 and bool(outcome.failures) and not outcome.exceptions)
    results = [
        AssertionResult(
            kind="load",
            name="Locust exited cleanly",
            passed=clean,
            expected="exit 0 (1 only with failed requests)",
            observed="stopped by the runner (overran)" if code is None else f"exit {code}",
            detail=f"{outcome.failures if outcome.failures is not None else 'no'} failures in "
            "locust_failures.csv; see locust.log",
        ),
        AssertionResult(
            kind="load",
            name="Locust raised no exceptions",
            passed=not outcome.exceptions,
            expected="0 rows in locust_exceptions.csv",
            observed=f"{len(outcome.exceptions)} rows",
            detail="; ".join(outcome.exceptions[:3]),
        ),
        AssertionResult(
            kind="load",
            name="Locust's counts match the request records",
            passed=_counts_match(outcome.requests, len(record.requests), in_flight)
            and _counts_match(outcome.failures, answered_failures, in_flight),
            expected=f"{len(record.requests)} requests, {answered_failures} failures "
            f"(Locust's stats may miss the {in_flight} answered after the shape's planned stop)",
            observed=(
                "no locust_stats.csv / locust_failures.csv"
                if outcome.requests is None or outcome.failures is None
                else f"{outcome.requests} requests, {outcome.failures} failures"
            ),
            detail="locust_stats.csv (Aggregated) and locust_failures.csv vs requests/*.jsonl",
        ),
    ]
    planned = outcome.planned_requests
    achieved = outcome.requests if outcome.requests is not None else len(record.requests)
    ratio = achieved / planned if planned else 0.0
    results.append(
        AssertionResult(
            kind="load",
            name=f"load achieved ≥ {MIN_VOLUME_RATIO:.0%} of the planned volume",
            passed=planned > 0 and ratio >= MIN_VOLUME_RATIO,
            expected=f"≥ {MIN_VOLUME_RATIO * planned:.0f} requests",
            observed=f"{achieved} requests ({ratio:.1%})" if planned else "no planned rate",
            detail=f"planned {planned:.0f} = rate {scenario.load.rate} req/s × users over "
            f"{scenario.load.duration_s} s",
        )
    )
    return results


def _relative_difference(a: float, b: float) -> float:
    largest = max(abs(a), abs(b))
    return 0.0 if largest == 0 else abs(a - b) / largest


def check_cross_signal(record: RunRecord, assertion: CrossSignal) -> AssertionResult:
    locust_count = sum(1 for r in record.requests if r.status != 0)
    prometheus = record.prometheus_request_count
    counts = {
        "locust": float(locust_count),
        "prometheus": None if prometheus is None else prometheus - record.probe_requests,
        "elasticsearch": None if record.es_access_log_count is None else float(record.es_access_log_count),
    }
    observed = ", ".join(f"{k} {v:.0f}" if v is not None else f"{k} n/a" for k, v in counts.items())
    name = f"cross-signal counts agree within {assertion.tolerance:.1%}"
    missing = [k for k, v in counts.items() if v is None]
    if missing:
        return AssertionResult(
            kind="cross_signal",
            name=name,
            passed=False,
            expected="all three counts",
            observed=observed,
            detail=f"not collected: {', '.join(missing)}",
        )
    values = {k: v for k, v in counts.items() if v is not None}
    worst = max(
        _relative_difference(values[a], values[b])
        for a, b in (("locust", "prometheus"), ("locust", "elasticsearch"), ("prometheus", "elasticsearch"))
    )
    return AssertionResult(
        kind="cross_signal",
        name=name,
        passed=locust_count > 0 and worst <= assertion.tolerance,
        expected=f"≤ {assertion.tolerance:.1%}",
        observed=observed,
        detail=f"largest difference {worst:.2%}"
        + (
            f"; Prometheus net of {record.probe_requests} chaos probe requests"
            if record.probe_requests
            else ""
        ),
    )


def check_no_personal_data(record: RunRecord) -> AssertionResult:
    """No e-mail address or card number in the run's log documents; the load sent some (the requests
    named "(personal data)"), and a scan that could not run or read nothing is a failure."""
    name = "no personal data in Elasticsearch"
    sent = sum(1 for r in record.requests if r.name.endswith("(personal data)") and r.status != 0)
    scan = record.privacy
    if scan is None or scan.error or scan.documents == 0 or sent == 0:
        why = (
            "not scanned"
            if scan is None
            else scan.error or ("no log document of this run" if scan.documents == 0 else "")
        )
        return AssertionResult(
            kind="privacy",
            name=name,
            passed=False,
            expected="0 findings in the run's documents",
            observed="unknown",
            detail=why or "the load sent no request carrying personal data",
        )
    return AssertionResult(
        kind="privacy",
        name=name,
        passed=not scan.findings,
        expected="0 findings in the run's documents",
        observed=f"{len(scan.findings)} findings",
        detail=f"{scan.documents} documents of {sent} personal-data requests and the rest scanned"
        + (f"; e.g. {'; '.join(scan.findings[:3])}" if scan.findings else ""),
    )


def check_chaos(record: RunRecord) -> AssertionResult:
    completed = record.chaos_status == "completed" and not record.chaos_deviated
    return AssertionResult(
        kind="chaos",
        name="chaos experiment completed with its steady state held",
        passed=completed,
        expected="completed, no deviation",
        observed=f"{record.chaos_status or 'no journal'}{', deviated' if record.chaos_deviated else ''}",
        detail="read from the Chaos Toolkit journal, not its exit code",
    )


def verify(scenario: Scenario, record: RunRecord) -> list[AssertionResult]:
    """Every assertion of ``scenario`` judged on ``record``."""
    results: list[AssertionResult] = []
    if not record.requests:
        results.append(
            AssertionResult(
                kind="load",
                name="load generated requests",
                passed=False,
                expected="> 0 requests",
                observed="0",
                detail="Locust recorded nothing",
            )
        )
    results += check_locust(record, scenario)
    if scenario.chaos is not None:
        results.append(check_chaos(record))
    results += [check_availability(record, scenario, slo) for slo in scenario.assertions.availability]
    results += [check_latency(record, scenario, slo) for slo in scenario.assertions.latency]
    if scenario.assertions.logs is not None:
        results += check_logs(record, scenario.assertions.logs)
    for alert in scenario.assertions.alerts_expected:
        results += check_expected_alert(record, alert)
    results += [check_forbidden_alert(record, name) for name in scenario.assertions.alerts_forbidden]
    if scenario.assertions.cross_signal is not None:
        results.append(check_cross_signal(record, scenario.assertions.cross_signal))
    if scenario.assertions.no_personal_data:
        results.append(check_no_personal_data(record))
    return results


def all_passed(results: list[AssertionResult]) -> bool:
    return bool(results) and all(r.passed for r in results)
