"""The committed Grafana dashboards, seen without Grafana: every panel plotted from the live stack.

``testbed dashboards render --since 15m`` reads stack/grafana/dashboards/*.json, runs each panel's
queries over the time range (PromQL through Prometheus' ``query_range``, the Elasticsearch panel's
terms × date-histogram aggregation as ``logs_reader``, as Grafana's datasource would) and writes one
self-contained HTML page: one PNG plot per panel (embedded), titled as in Grafana, under its dashboard
and row. A panel whose queries return no data is flagged in red, not drawn as an empty chart.
"""

from __future__ import annotations

import base64
import io
import json
import re
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from testbed.context import RenderContext
from testbed.metrics.client import prometheus_client
from testbed.metrics.dashboards import DASHBOARDS_DIR

POINTS = 240  # samples per series: a resolution a 12-column plot shows
MIN_STEP_S = 5


@dataclass
class Series:
    label: str
    times: list[float]
    values: list[float]


@dataclass
class Panel:
    dashboard: str
    row: str
    title: str
    kind: str
    unit: str
    series: list[Series] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(s.values for s in self.series)


@dataclass
class Rendered:
    path: Path
    panels: list[Panel]

    @property
    def flagged(self) -> list[Panel]:
        return [panel for panel in self.panels if panel.empty]


def _legend(template: str, labels: dict[str, str]) -> str:
    if template:
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip()
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or labels.get("__name__", "value")


def _prometheus_series(
    client: httpx.Client, target: dict[str, Any], start: float, end: float, step: int
) -> list[Series]:
    response = client.get(
        "/api/v1/query_range", params={"query": target["expr"], "start": start, "end": end, "step": step}
    )
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200:
        raise RuntimeError(body.get("error") or f"HTTP {response.status_code}")
    return [
        Series(
            _legend(target.get("legendFormat", ""), item["metric"]),
            [float(t) for t, _ in item["values"]],
            [float(v) for _, v in item["values"]],
        )
        for item in body["data"]["result"]
    ]


def _elasticsearch_series(
    ctx: RenderContext, target: dict[str, Any], start: float, end: float
) -> list[Series]:
    """Grafana's Elasticsearch panel: count per terms bucket per date-histogram bucket."""
    terms = next(agg for agg in target["bucketAggs"] if agg["type"] == "terms")
    histogram = next(agg for agg in target["bucketAggs"] if agg["type"] == "date_histogram")
    interval = max(MIN_STEP_S, int((end - start) / 60))
    query: dict[str, Any] = {
        "bool": {
            "filter": [
                {
                    "range": {
                        target["timeField"]: {
                            "gte": int(start * 1000),
                            "lte": int(end * 1000),
                            "format": "epoch_millis",
                        }
                    }
                },
                {"query_string": {"query": target.get("query") or "*"}},
            ]
        }
    }
    aggregations = {
        "terms": {
            "terms": {"field": terms["field"], "size": 20},
            "aggs": {
                "histogram": {
                    "date_histogram": {"field": histogram["field"], "fixed_interval": f"{interval}s"}
                }
            },
        }
    }
    tls = ssl.create_default_context(cafile=str(ctx.ca_cert))
    with httpx.Client(
        verify=tls, auth=("logs_reader", ctx.secrets.logs_reader_password), timeout=30
    ) as client:
        response = client.post(
            f"https://{ctx.address('elasticsearch')}/logs-testbed-*/_search",
            json={"size": 0, "query": query, "aggs": aggregations},
        )
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
    return [
        Series(
            str(bucket["key"]),
            [b["key"] / 1000 for b in bucket["histogram"]["buckets"]],
            [float(b["doc_count"]) for b in bucket["histogram"]["buckets"]],
        )
        for bucket in response.json()["aggregations"]["terms"]["buckets"]
    ]


def collect(
    ctx: RenderContext, since_s: int, end: float | None = None, directory: Path = DASHBOARDS_DIR
) -> list[Panel]:
    """Every panel of every committed dashboard with its data over [end - since_s, end]."""
    end = end or time.time()
    start = end - since_s
    step = max(MIN_STEP_S, since_s // POINTS)
    panels: list[Panel] = []
    with prometheus_client(ctx) as prometheus:
        for path in sorted(directory.glob("*.json")):
            document = json.loads(path.read_text())
            row = ""
            for raw in document.get("panels", []):
                if raw["type"] == "row":
                    row = raw["title"]
                    continue
                unit = raw.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
                panel = Panel(document["title"], row, raw["title"], raw["type"], unit)
                for target in raw.get("targets") or []:
                    try:
                        if "expr" in target:
                            panel.series += _prometheus_series(prometheus, target, start, end, step)
                        elif "bucketAggs" in target:
                            panel.series += _elasticsearch_series(ctx, target, start, end)
                    except (httpx.HTTPError, RuntimeError, KeyError, StopIteration) as exc:
                        panel.errors.append(f"{target.get('expr', 'elasticsearch query')}: {exc}")
                panels.append(panel)
    return panels


def _plot(panel: Panel) -> str:
    """One panel as a base64 PNG: lines for time series, the last value (large) for a stat."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 2.6 if panel.kind != "stat" else 1.8), dpi=90)
    try:
        if panel.kind == "stat":
            values = [s.values[-1] for s in panel.series if s.values]
            axes.axis("off")
            axes.text(
                0.5,
                0.5,
                f"{sum(values):.4g} {panel.unit if panel.unit != 'none' else ''}".strip(),
                ha="center",
                va="center",
                fontsize=28,
            )
        else:
            for series in panel.series[:12]:
                # matplotlib's date numbers (days since the epoch), as its datetime converter makes them.
                times = [mdates.date2num(datetime.fromtimestamp(t, tz=UTC)) for t in series.times]
                axes.plot(times, series.values, label=series.label[:60], linewidth=1.2)
            axes.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))
            axes.set_ylabel(panel.unit)
            axes.grid(alpha=0.3)
            if panel.series:
                axes.legend(fontsize=6, loc="upper left", framealpha=0.6)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>testbed dashboards {{ start }} to {{ end }}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; } h3 { color: #555; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
.panel { border: 1px solid #ddd; border-radius: 4px; padding: 6px; width: 660px; }
.panel h4 { margin: 0 0 4px 0; font-size: 0.95em; }
.nodata { border-color: #c00; background: #fff0f0; }
.nodata p { color: #c00; font-weight: bold; }
.summary { background: #f6f6f6; padding: 0.6em; }
</style></head><body>
<h1>Dashboards, {{ start }} to {{ end }} (UTC)</h1>
<p class="summary">{{ panels|length }} panels, {{ flagged|length }} without data{% if flagged %}:
{% for p in flagged %}<a href="#{{ p.anchor }}">{{ p.dashboard }} / {{ p.title }}</a>
{%- if not loop.last %}, {% endif %}{% endfor %}{% endif %}.</p>
{% for dashboard, rows in dashboards.items() %}<h2>{{ dashboard }}</h2>
{% for row, items in rows.items() %}{% if row %}<h3>{{ row }}</h3>{% endif %}<div class="grid">
{% for p in items %}<div class="panel{% if p.empty %} nodata{% endif %}" id="{{ p.anchor }}">
<h4>{{ p.title }}</h4>
{% if p.empty %}<p>No data in this range{% for e in p.errors %}<br>{{ e }}{% endfor %}</p>
{% else %}<img alt="{{ p.title }}" src="data:image/png;base64,{{ p.png }}">{% endif %}</div>
{% endfor %}</div>
{% endfor %}{% endfor %}</body></html>
"""


def render(
    ctx: RenderContext, since_s: int, output: Path, end: float | None = None, directory: Path = DASHBOARDS_DIR
) -> Rendered:
    """Write the HTML page for [end - since_s, end]; panels without data are listed and flagged."""
    import jinja2

    end = end or time.time()
    panels = collect(ctx, since_s, end, directory)
    dashboards: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for index, panel in enumerate(panels):
        entry = {
            "dashboard": panel.dashboard,
            "title": panel.title,
            "empty": panel.empty,
            "errors": panel.errors,
            "anchor": f"panel-{index}",
            "png": "" if panel.empty else _plot(panel),
        }
        dashboards.setdefault(panel.dashboard, {}).setdefault(panel.row, []).append(entry)
    flagged = [
        entry for rows in dashboards.values() for items in rows.values() for entry in items if entry["empty"]
    ]
    stamp = "%Y-%m-%d %H:%M:%S"
    html = (
        jinja2.Environment(autoescape=True)
        .from_string(TEMPLATE)
        .render(
            dashboards=dashboards,
            panels=panels,
            flagged=flagged,
            start=datetime.fromtimestamp(end - since_s, tz=UTC).strftime(stamp),
            end=datetime.fromtimestamp(end, tz=UTC).strftime(stamp),
        )
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(html)
    return Rendered(output, panels)


# Before and after the load: the panels' rate windows and the alerts' resolution show up.
RUN_MARGIN_S = 60


def render_run(ctx: RenderContext, output: Path, started_at: float, ended_at: float) -> str | None:
    """A scenario run's dashboards page; returns why it could not be made (a report note), else None."""
    end = ended_at + RUN_MARGIN_S / 2
    try:
        rendered = render(ctx, int(end - started_at + RUN_MARGIN_S), output, end=min(end, time.time()))
    except (httpx.HTTPError, OSError) as exc:
        return f"dashboards not rendered: {exc}"
    if rendered.flagged:
        names = ", ".join(f"{p.dashboard} / {p.title}" for p in rendered.flagged)
        return f"dashboards: {len(rendered.flagged)} panels without data over the run: {names}"
    return None
