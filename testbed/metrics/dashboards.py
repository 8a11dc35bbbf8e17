"""Grafana dashboards as code (grafana-foundation-sdk), generated into committed JSON.

Four dashboards: service overview (RED per service), dependencies (PostgreSQL, RabbitMQ,
Elasticsearch), SLOs and error budgets (from stack/slo.yaml), log pipeline health. Panels read the
recording rules where one exists, so the dashboards and the alerts show the same numbers. No template
variables: every query runs as written, which lets a test execute each against the live Prometheus.
"""

from __future__ import annotations

import enum
import json
import re
import types
import typing
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import elasticsearch, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dashboard_model
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from testbed.metrics.policy import Policy, SloSpec, load_policy, load_slos
from testbed.metrics.rules import USER_TRAFFIC, red_names, sli_record_name
from testbed.settings import STACK_DIR

DASHBOARDS_DIR = STACK_DIR / "grafana" / "dashboards"
# Datasource uids fixed by stack/grafana/provisioning/datasources/datasources.yml.
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="prometheus")
ELASTICSEARCH = DataSourceRef(type_val="elasticsearch", uid="elasticsearch")
LOG_INDICES = 'index=~"logs-testbed-.*"'


def query(expr: str, legend: str = "", ref_id: str = "A") -> prometheus.Dataquery:
    built = prometheus.Dataquery().expr(expr).ref_id(ref_id).datasource(PROMETHEUS)
    return built.legend_format(legend) if legend else built


def graph(title: str, unit: str, *queries: prometheus.Dataquery, description: str = "") -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).datasource(PROMETHEUS).height(8).span(12)
    if description:
        panel = panel.description(description)
    for index, target in enumerate(queries):
        panel = panel.with_target(target.ref_id(chr(ord("A") + index)))
    return panel


def single_stat(title: str, unit: str, expr: str, legend: str = "") -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .unit(unit)
        .datasource(PROMETHEUS)
        .height(4)
        .span(6)
        .with_target(query(expr, legend))
    )


def _base(uid: str, title: str, description: str) -> dash.Dashboard:
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["testbed"])
        .refresh("10s")
        .time("now-30m", "now")
        .timezone("utc")
        .readonly()
    )


def service_overview(policy: Policy) -> dash.Dashboard:
    names = red_names(policy)
    return (
        _base(
            "testbed-services", "Services: RED", "Rate, errors and duration of every service (user traffic)."
        )
        .with_row(dash.Row("Now"))
        .with_panel(single_stat("Requests/s (all services)", "reqps", f"sum({names['requests']})"))
        .with_panel(
            single_stat(
                "5xx ratio (all services)",
                "percentunit",
                f"sum({names['errors']} or {names['requests']} * 0) / sum({names['requests']})",
            )
        )
        .with_panel(single_stat("Instances up", "none", 'sum(up{tier="service"})'))
        # Alertmanager's gauge exists with zero alerts: no `or vector(0)` hiding a missing metric.
        .with_panel(single_stat("Alerts firing", "none", 'sum(alertmanager_alerts{state="active"})'))
        .with_row(dash.Row("Rate, errors, duration"))
        .with_panel(graph("Requests/s", "reqps", query(names["requests"], "{{service}}")))
        .with_panel(graph("5xx ratio", "percentunit", query(names["error_ratio"], "{{service}}")))
        .with_panel(
            graph(
                "Latency p50 / p99",
                "s",
                query(names["p50"], "{{service}} p50"),
                query(names["p99"], "{{service}} p99"),
            )
        )
        .with_panel(
            graph(
                "Requests/s by route",
                "reqps",
                query(names["route_requests"], "{{service}} {{method}} {{route}}"),
            )
        )
        .with_panel(graph("p99 by route", "s", query(names["route_p99"], "{{service}} {{method}} {{route}}")))
        .with_panel(
            graph(
                "In-flight requests",
                "none",
                query("sum by (service) (http_requests_in_flight)", "{{service}}"),
            )
        )
        .with_row(dash.Row("Health"))
        .with_panel(graph("Scrape up", "none", query('up{tier="service"}', "{{job}} {{instance}}")))
        .with_panel(
            graph("Health probe success", "none", query('probe_success{job="blackbox"}', "{{instance}}"))
        )
        .with_panel(
            graph(
                "Calls to dependencies by outcome",
                "reqps",
                query(
                    "sum by (service, target, outcome) "
                    f"(rate(dependency_requests_total[{policy.symptom_rate_window}]))",
                    "{{service}} → {{target}} {{outcome}}",
                ),
            )
        )
    )


def dependencies(policy: Policy) -> dash.Dashboard:
    window = policy.symptom_rate_window
    dlq = policy.thresholds.dead_letter_queue_regex
    return (
        _base(
            "testbed-dependencies",
            "Dependencies",
            "PostgreSQL, RabbitMQ and Elasticsearch as the stack sees them.",
        )
        .with_row(dash.Row("PostgreSQL"))
        .with_panel(single_stat("PostgreSQL up", "none", "pg_up"))
        .with_panel(
            graph(
                "Connections per database",
                "none",
                query("sum by (datname) (pg_stat_database_numbackends)", "{{datname}}"),
            )
        )
        .with_panel(
            graph(
                "Transactions/s",
                "ops",
                query(
                    f"sum by (datname) (rate(pg_stat_database_xact_commit[{window}]))", "{{datname}} commit"
                ),
                query(
                    f"sum by (datname) (rate(pg_stat_database_xact_rollback[{window}]))",
                    "{{datname}} rollback",
                ),
            )
        )
        .with_row(dash.Row("RabbitMQ"))
        .with_panel(
            graph(
                "Ready messages per queue",
                "none",
                query(f'rabbitmq_queue_messages_ready{{queue!~"{dlq}"}}', "{{queue}}"),
            )
        )
        .with_panel(
            graph(
                "Dead-lettered messages",
                "none",
                query(f'rabbitmq_queue_messages{{queue=~"{dlq}"}}', "{{queue}}"),
            )
        )
        .with_panel(
            graph(
                "Consumed messages/s by outcome",
                "ops",
                query(
                    f"sum by (service, queue, outcome) (rate(queue_messages_consumed_total[{window}]))",
                    "{{queue}} {{outcome}}",
                ),
            )
        )
        .with_panel(graph("Consumers per queue", "none", query("rabbitmq_queue_consumers", "{{queue}}")))
        .with_row(dash.Row("Elasticsearch"))
        .with_panel(
            single_stat(
                "Cluster status (0 green, 1 yellow, 2 red)",
                "none",
                'max(elasticsearch_cluster_health_status{color="yellow"})'
                ' + 2 * max(elasticsearch_cluster_health_status{color="red"})',
            )
        )
        .with_panel(
            graph(
                "JVM heap used",
                "bytes",
                query('elasticsearch_jvm_memory_used_bytes{area="heap"}', "{{name}}"),
            )
        )
        .with_panel(
            graph(
                "Documents indexed/s",
                "ops",
                query(f"sum(rate(elasticsearch_indices_indexing_index_total[{window}]))", "indexing"),
            )
        )
    )


def slo_dashboard(policy: Policy, spec: SloSpec) -> dash.Dashboard:
    short, long = policy.scaled_window("5m"), policy.scaled_window("1h")
    board = _base(
        "testbed-slo",
        "SLOs and error budgets",
        f"Each SLO of stack/slo.yaml: error ratio, burn rate (1 = budget spent exactly over {spec.period}), "
        f"windows scaled by {policy.burn_rate_window_scale}.",
    )
    board = board.with_row(dash.Row("Burn-rate alerts"))
    board = board.with_panel(
        single_stat(
            "SLO alerts firing",
            "none",
            # ALERTS has no series while nothing fires: zero then, but only while the SLO recordings exist
            # (a bare `or vector(0)` would read any missing metric as "no alert").
            'count(ALERTS{alertname=~"SLOBurnRate.*",alertstate="firing"})'
            " or on() (0 * count(slo:objective:ratio))",
        )
    )
    for slo in spec.slos:
        selector = f'{{slo="{slo.name}"}}'
        board = board.with_row(
            dash.Row(f"{slo.name}: {slo.method} {slo.route} {slo.sli} ≥ {slo.objective:g}")
        )
        board = board.with_panel(
            graph(
                "Error ratio",
                "percentunit",
                query(f"{sli_record_name(short)}{selector}", f"over {short}"),
                query(f"{sli_record_name(long)}{selector}", f"over {long}"),
                query(f"1 - slo:objective:ratio{selector}", "error budget (ratio)"),
            )
        )
        board = board.with_panel(
            graph(
                "Burn rate",
                "none",
                query(f"{sli_record_name(short)}{selector} / {slo.error_budget}", f"over {short}"),
                query(f"{sli_record_name(long)}{selector} / {slo.error_budget}", f"over {long}"),
                description="14.4 over both windows pages; 1 spends the budget exactly over the period.",
            )
        )
    return board


def log_pipeline(policy: Policy) -> dash.Dashboard:
    window = policy.symptom_rate_window
    return (
        _base(
            "testbed-log-pipeline",
            "Log pipeline",
            "Services → files → rsyslog → Elasticsearch: is every log arriving?",
        )
        .with_panel(
            graph(
                "Requests/s served vs log documents/s indexed",
                "ops",
                query(f"sum(rate(http_requests_total{{{USER_TRAFFIC}}}[{window}]))", "requests/s"),
                query(
                    f"sum(rate(elasticsearch_index_stats_indexing_index_total{{{LOG_INDICES}}}[{window}]))",
                    "log docs/s",
                ),
                description="They move together; LogPipelineStalled fires when logs stop.",
            )
        )
        .with_panel(
            graph(
                "Log documents per index",
                "none",
                query(f"elasticsearch_indices_docs_primary{{{LOG_INDICES}}}", "{{index}}"),
            )
        )
        .with_panel(
            graph(
                "Log index size",
                "bytes",
                query(f"elasticsearch_indices_store_size_bytes_primary{{{LOG_INDICES}}}", "{{index}}"),
            )
        )
        # elasticsearch_exporter 1.9 has no elasticsearch_cluster_health_up: one health colour is 1 while
        # the exporter reads the cluster (found by `testbed dashboards render`: the panel had no data).
        .with_panel(
            single_stat("Elasticsearch reachable", "none", "sum(elasticsearch_cluster_health_status)")
        )
        .with_panel(log_events_by_level())
    )


def log_events_by_level() -> timeseries.Panel:
    """The documents themselves, from the Elasticsearch datasource: log events per level over time."""
    events = (
        elasticsearch.Dataquery()
        .ref_id("A")
        .datasource(ELASTICSEARCH)
        .query("*")
        .time_field("@timestamp")
        .metrics([elasticsearch.Count().id("1")])
        .bucket_aggs(
            [
                elasticsearch.Terms().id("2").field("log.level"),
                elasticsearch.DateHistogram().id("3").field("@timestamp"),
            ]
        )
    )
    return (
        timeseries.Panel()
        .title("Log events by level (Elasticsearch)")
        .datasource(ELASTICSEARCH)
        .unit("short")
        .height(8)
        .span(12)
        .with_target(events)
    )


def dashboards(policy: Policy | None = None, spec: SloSpec | None = None) -> dict[str, str]:
    """File name -> JSON of every dashboard."""
    policy = policy or load_policy()
    spec = spec or load_slos()
    boards = [
        service_overview(policy),
        dependencies(policy),
        slo_dashboard(policy, spec),
        log_pipeline(policy),
    ]
    result = {}
    for board in boards:
        built = board.build()
        document = json.loads(json.dumps(built, cls=JSONEncoder))
        layout(document["panels"])
        result[f"{built.uid}.json"] = json.dumps(document, indent=2, sort_keys=True) + "\n"
    return result


GRID_COLUMNS = 24


def panel_id(row: str, title: str) -> int:
    """Stable across insertions (links like ?viewPanel=<id> keep working): derived from row and title."""
    return zlib.crc32(f"{row}/{title}".encode()) % 1_000_000 + 1


def layout(panels: list[dict[str, Any]]) -> None:
    """Ids and positions as Grafana loads them: rows full width, panels wrapped inside 24 columns.

    (The SDK's builder places panels left to right without wrapping: three landed at x=18 w=12.)
    """
    x = y = line_height = 0
    row = ""
    seen: dict[int, str] = {}
    for panel in panels:
        if panel["type"] == "row":
            row = panel["title"]
        identifier = panel_id(row if panel["type"] != "row" else "", panel["title"])
        if identifier in seen:
            raise ValueError(f"panel id clash: {panel['title']!r} and {seen[identifier]!r}: rename one")
        seen[identifier] = panel["title"]
        panel["id"] = identifier
        width, height = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if panel["type"] == "row" or x + width > GRID_COLUMNS:
            y, x, line_height = y + line_height, 0, 0
        if panel["type"] == "row":
            panel["gridPos"] = {"x": 0, "y": y, "w": GRID_COLUMNS, "h": 1}
            y += 1
            continue
        panel["gridPos"] = {"x": x, "y": y, "w": width, "h": height}
        x += width
        line_height = max(line_height, height)


def _type_problems(value: Any, hint: Any, path: str) -> list[str]:
    if hint is Any or value is None:
        return []
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [h for h in typing.get_args(hint) if h is not type(None)]
        results = [_type_problems(value, option, path) for option in options]
        return [] if any(not r for r in results) else results[0]
    if origin is typing.Literal:
        return (
            []
            if value in typing.get_args(hint)
            else [f"{path}: {value!r} not one of {typing.get_args(hint)}"]
        )
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        (item,) = typing.get_args(hint) or (Any,)
        return [p for index, v in enumerate(value) for p in _type_problems(v, item, f"{path}[{index}]")]
    if origin is dict:
        return [] if isinstance(value, dict) else [f"{path}: expected an object"]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        allowed = [member.value for member in hint]
        ok = isinstance(value, hint) or value in allowed
        return [] if ok else [f"{path}: {value!r} not one of {allowed}"]
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected a number, got {value!r}"]
    if hint in (int, str, bool):
        ok = isinstance(value, hint) and not (hint is int and isinstance(value, bool))
        return [] if ok else [f"{path}: expected {hint.__name__}, got {value!r}"]
    if isinstance(hint, type) and hint.__module__.startswith("grafana_foundation_sdk.models"):
        if not isinstance(value, hint):
            return [f"{path}: expected {hint.__name__}, got {type(value).__name__}"]
        hints = typing.get_type_hints(hint)
        return [
            p
            for name, h in hints.items()
            for p in _type_problems(getattr(value, name, None), h, f"{path}.{name}")
        ]
    return []  # datasource-specific query variants: their own models, not the dashboard schema


def _unknown_keys(original: Any, decoded: Any, path: str = "") -> list[str]:
    if isinstance(original, dict) and isinstance(decoded, dict):
        dropped = [
            f"{path}/{key}: not in Grafana's dashboard schema" for key in original if key not in decoded
        ]
        return dropped + [
            p
            for key in original
            if key in decoded
            for p in _unknown_keys(original[key], decoded[key], f"{path}/{key}")
        ]
    if isinstance(original, list) and isinstance(decoded, list):
        return [
            p
            for index, (a, b) in enumerate(zip(original, decoded, strict=False))
            for p in _unknown_keys(a, b, f"{path}[{index}]")
        ]
    return []


def schema_problems(document: dict[str, Any]) -> list[str]:
    """The dashboard JSON checked against the SDK's typed dashboard model (Grafana's schema, generated by
    cog): every key known, every value of its declared type, and what Grafana needs to lay panels out:
    unique ids, every panel inside the 24-column grid."""
    decoded = dashboard_model.Dashboard.from_json(document)
    problems = _unknown_keys(document, json.loads(json.dumps(decoded, cls=JSONEncoder)))
    problems += _type_problems(decoded, dashboard_model.Dashboard, "dashboard")
    ids = [panel.get("id") for panel in document.get("panels", [])]
    if None in ids or len(set(ids)) != len(ids):
        problems.append(f"panel ids missing or repeated: {ids}")
    for panel in document.get("panels", []):
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(key), int) for key in "xywh"):
            continue  # reported by the type check
        if grid["x"] < 0 or grid["w"] < 1 or grid["x"] + grid["w"] > GRID_COLUMNS:
            problems.append(
                f"{panel['title']!r}: x={grid['x']} w={grid['w']} leaves the {GRID_COLUMNS}-column grid"
            )
    return problems


def panel_queries(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every Prometheus target in one dashboard's JSON."""
    found = []
    for panel in document.get("panels", []):
        for target in panel.get("targets", []) or []:
            if "expr" in target:
                found.append((panel["title"], target["expr"]))
    return found


_COUNTER_FUNCTION = re.compile(r"\b(rate|irate|increase)\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)")


def counter_functions(expr: str) -> list[tuple[str, str]]:
    """(function, metric) of every rate/irate/increase applied directly to a metric in ``expr``."""
    return _COUNTER_FUNCTION.findall(expr)


def empty_panel_queries(query: Callable[[str], list[Any]], directory: Path = DASHBOARDS_DIR) -> list[str]:
    """The panel check: every Prometheus query of every dashboard in ``directory`` must return series
    (``query`` runs PromQL on the live Prometheus). Returns ``"<dashboard> / <panel>: <expr>"`` for
    each query without any."""
    empty = []
    for path in sorted(directory.glob("*.json")):
        for title, expr in panel_queries(json.loads(path.read_text())):
            if not query(expr):
                empty.append(f"{path.stem} / {title}: {expr}")
    return empty


def write_dashboards(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in dashboards().items():
        path = directory / name
        path.write_text(content)
        written.append(path)
    return written
