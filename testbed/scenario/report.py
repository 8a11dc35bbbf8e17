"""What a run leaves for people and CI: a self-contained HTML report, JUnit XML and summary.json.

The plots are matplotlib PNGs embedded as base64, so the report is one file that opens anywhere.
Times on the plots are seconds since load start; the fault window is shaded.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # no display: render to PNG only
import matplotlib.pyplot as plt
from junit_xml import TestCase, TestSuite, to_xml_report_string

from testbed.scenario.record import AlertEvent, RunRecord
from testbed.scenario.spec import Scenario
from testbed.scenario.verify import AssertionResult, all_passed, percentile

if TYPE_CHECKING:
    from testbed.context import RenderContext

BUCKET_S = 5.0


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _shade_fault(axes: Any, record: RunRecord) -> None:
    if record.fault_window is not None:
        start, end = (t - record.started_at for t in record.fault_window)
        axes.axvspan(start, end, color="tab:red", alpha=0.15, label="fault window")


def _buckets(record: RunRecord) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = defaultdict(list)
    for sample in record.requests:
        grouped[int((sample.t - record.started_at) // BUCKET_S)].append(sample)
    return grouped


def plot_traffic(record: RunRecord) -> str:
    grouped = _buckets(record)
    keys = sorted(grouped)
    times = [k * BUCKET_S for k in keys]
    figure, (rate_axes, latency_axes) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    rate_axes.plot(times, [len(grouped[k]) / BUCKET_S for k in keys], label="requests/s")
    rate_axes.plot(times, [sum(not s.ok for s in grouped[k]) / BUCKET_S for k in keys], label="errors/s")
    rate_axes.set_ylabel("per second")
    _shade_fault(rate_axes, record)
    rate_axes.legend(loc="upper right")
    for pct in (50, 95, 99):
        values = [percentile([s.latency_ms for s in grouped[k]], pct) for k in keys]
        latency_axes.plot(times, values, label=f"p{pct}")
    latency_axes.set_ylabel("latency (ms)")
    latency_axes.set_xlabel(f"seconds since load start ({BUCKET_S:g} s buckets)")
    _shade_fault(latency_axes, record)
    latency_axes.legend(loc="upper right")
    return _png(figure)


def _alert_row(event: AlertEvent) -> str:
    """One timeline row per alert and what it is about (TargetDown fires per job, SLO alerts per slo)."""
    subject = event.labels.get("slo") or event.labels.get("service") or event.labels.get("job")
    return f"{event.name} ({subject})" if subject else event.name


def plot_alerts(record: RunRecord) -> str:
    rows = sorted({_alert_row(e) for e in record.alerts})
    figure, axes = plt.subplots(figsize=(10, 1.2 + 0.35 * max(len(rows), 1)))
    end = max([record.ended_at, *(e.at for e in record.alerts)]) - record.started_at
    for index, row in enumerate(rows):
        firing_at: float | None = None
        for event in sorted((e for e in record.alerts if _alert_row(e) == row), key=lambda e: e.at):
            at = event.at - record.started_at
            if event.state == "firing" and firing_at is None:
                firing_at = at
            elif event.state == "resolved" and firing_at is not None:
                axes.broken_barh(
                    [(firing_at, max(at - firing_at, 0.5))], (index - 0.3, 0.6), color="tab:orange"
                )
                firing_at = None
        if firing_at is not None:
            axes.broken_barh([(firing_at, max(end - firing_at, 0.5))], (index - 0.3, 0.6), color="tab:red")
    axes.set_yticks(range(len(rows)), rows or [])
    axes.set_xlabel("seconds since load start (orange: fired and resolved, red: still firing)")
    _shade_fault(axes, record)
    if not rows:
        axes.text(0.5, 0.5, "no alert notifications", ha="center", va="center", transform=axes.transAxes)
    return _png(figure)


def plot_log_lag(record: RunRecord) -> str:
    figure, axes = plt.subplots(figsize=(10, 2.5))
    points = [
        (s.t - record.started_at, record.log_sightings[s.id] - s.t)
        for s in record.requests
        if s.id in record.log_sightings
    ]
    if points:
        axes.scatter([p[0] for p in points], [p[1] for p in points], s=4)
    lost = [s.t - record.started_at for s in record.requests if s.status and s.id not in record.log_sightings]
    if lost:
        axes.scatter(lost, [0] * len(lost), s=12, color="tab:red", marker="x", label="never found")
        axes.legend(loc="upper right")
    axes.set_ylabel("log lag (s)")
    axes.set_xlabel("request time, seconds since load start")
    _shade_fault(axes, record)
    return _png(figure)


def summary(
    scenario: Scenario, record: RunRecord, results: list[AssertionResult], wall_s: float
) -> dict[str, Any]:
    return {
        "scenario": scenario.name,
        "run_id": record.run_id,
        "passed": all_passed(results),
        "wall_time_s": round(wall_s, 1),
        "requests": len(record.requests),
        "failed_requests": sum(not r.ok for r in record.requests),
        "fault_window_s": (
            [round(t - record.started_at, 1) for t in record.fault_window] if record.fault_window else None
        ),
        "chaos_status": record.chaos_status,
        "notes": record.notes,
        "assertions": [r.model_dump() for r in results],
    }


def junit_xml(scenario: Scenario, results: list[AssertionResult], wall_s: float) -> str:
    cases = []
    for result in results:
        case = TestCase(result.name, classname=f"scenario.{scenario.name}.{result.kind}", elapsed_sec=0.0)
        if not result.passed:
            case.add_failure_info(
                message=f"expected {result.expected}, observed {result.observed}", output=result.detail
            )
        cases.append(case)
    if cases:
        cases[0].elapsed_sec = wall_s  # the suite's wall time, carried once
    return to_xml_report_string([TestSuite(f"scenario.{scenario.name}", cases)])


def html_report(
    scenario: Scenario,
    record: RunRecord,
    results: list[AssertionResult],
    wall_s: float,
    dashboards_page: str | None = None,
) -> str:
    verdict = "PASSED" if all_passed(results) else "FAILED"
    colour = "#1a7f37" if verdict == "PASSED" else "#cf222e"
    rows = "\n".join(
        f"<tr class='{'ok' if r.passed else 'ko'}'><td>{'✔' if r.passed else '✘'}</td>"
        f"<td>{html.escape(r.kind)}</td><td>{html.escape(r.name)}</td><td>{html.escape(r.expected)}</td>"
        f"<td>{html.escape(r.observed)}</td><td>{html.escape(r.detail)}</td></tr>"
        for r in results
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in record.notes) or "<li>none</li>"
    fault = "none"
    if record.fault_window:
        start, end = (t - record.started_at for t in record.fault_window)
        fault = f"{start:.1f} s → {end:.1f} s"
    link = (
        f'<p><a href="{dashboards_page}">The dashboards over this run</a> (every panel)</p>'
        if dashboards_page
        else ""
    )
    images = [
        ("Requests, errors and latency", plot_traffic(record)),
        ("Alert timeline", plot_alerts(record)),
        ("Log ingest lag", plot_log_lag(record)),
    ]
    figures = "\n".join(
        f"<h2>{title}</h2><img alt='{title}' src='data:image/png;base64,{data}'>" for title, data in images
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{scenario.name}: {verdict}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; }}
.verdict {{ color: white; background: {colour}; padding: .2em .6em; border-radius: .3em; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border: 1px solid #ddd; padding: .3em .5em; }}
tr.ko {{ background: #ffebe9; }}
tr.ok td:first-child {{ color: #1a7f37; }} tr.ko td:first-child {{ color: #cf222e; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{html.escape(scenario.name)} <span class="verdict">{verdict}</span></h1>
<p>{html.escape(scenario.description)}</p>
<p>Run <code>{record.run_id}</code> · wall time {wall_s:.0f} s · load {scenario.load.shape.value},
{scenario.load.users} users, {scenario.load.duration_s} s · {len(record.requests)} requests,
{sum(not r.ok for r in record.requests)} failed · chaos:
{html.escape(str(scenario.chaos.experiment) if scenario.chaos else "none")} · fault window {fault}</p>
{link}
<h2>Assertions</h2>
<table><tr><th></th><th>kind</th><th>assertion</th><th>expected</th><th>observed</th><th>detail</th></tr>
{rows}</table>
{figures}
<h2>Collection notes</h2><ul>{notes}</ul>
</body></html>
"""


DASHBOARDS_PAGE = "dashboards.html"


def write_artifacts(
    run_dir: Path,
    scenario: Scenario,
    record: RunRecord,
    results: list[AssertionResult],
    wall_s: float,
    ctx: RenderContext | None = None,
) -> Path:
    """Write record.json, summary.json, junit.xml and report.html; returns the report's path.

    With the stack's ``ctx``: also dashboards.html, the committed dashboards over the run's window.
    """
    if ctx is not None:
        from testbed.metrics.dashboard_render import render_run

        if problem := render_run(ctx, run_dir / DASHBOARDS_PAGE, record.started_at, record.ended_at):
            record.notes.append(problem)
    record.save(run_dir / "record.json")
    (run_dir / "summary.json").write_text(json.dumps(summary(scenario, record, results, wall_s), indent=2))
    (run_dir / "junit.xml").write_text(junit_xml(scenario, results, wall_s))
    report = run_dir / "report.html"
    page = DASHBOARDS_PAGE if (run_dir / DASHBOARDS_PAGE).exists() else None
    report.write_text(html_report(scenario, record, results, wall_s, page))
    return report
