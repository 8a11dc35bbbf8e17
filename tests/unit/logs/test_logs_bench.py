"""The log bench's verdicts: the goals are numbers written here, not read from the bench itself."""

from __future__ import annotations

from testbed.logs.bench import LatencyStep, Report


def _report(pipeline: float, ceilings: list[float], p99_s: float) -> Report:
    step = LatencyStep(rate=500.0, events=10_000, probes=1_000, p50_s=0.3, p99_s=p99_s, max_s=p99_s)
    return Report(steps=[step], max_rate_events=200_000, max_rate_per_s=pipeline, ceiling_per_s=ceilings)


def test_pipeline_is_judged_against_the_mean_of_the_ceilings_around_it() -> None:
    report = _report(pipeline=9_000.0, ceilings=[10_000.0, 9_000.0], p99_s=0.8)
    assert abs(report.ratio - 9_000 / 9_500) < 1e-9
    assert report.goals_met
    assert "| **pipeline / ceiling** | **0.95** | ≥ 0.9: met |" in report.markdown()


def test_a_pipeline_below_0_9_of_the_ceiling_misses() -> None:
    report = _report(pipeline=8_500.0, ceilings=[10_000.0, 10_000.0], p99_s=0.8)
    assert not report.goals_met
    assert "≥ 0.9: MISSED" in report.markdown()


def test_a_p99_above_one_second_at_500_events_per_second_misses() -> None:
    report = _report(pipeline=9_500.0, ceilings=[10_000.0], p99_s=1.05)
    assert not report.goals_met
    assert "≤ 1.0 s: MISSED" in report.markdown()


def test_no_ceiling_measured_is_no_pass() -> None:
    assert not _report(pipeline=9_500.0, ceilings=[], p99_s=0.5).goals_met
