"""Dashboards as code: committed JSON equals the generated one; every panel queries Prometheus sanely."""

from __future__ import annotations

import configparser
import json

import yaml

from testbed.metrics.dashboards import (
    DASHBOARDS_DIR,
    counter_functions,
    dashboards,
    layout,
    panel_queries,
    schema_problems,
)
from testbed.settings import STACK_DIR

FIX = "run `.venv/bin/testbed metrics render` and commit the result"


def test_committed_dashboards_equal_generated() -> None:
    generated = dashboards()
    committed = {path.name for path in DASHBOARDS_DIR.glob("*.json")}
    assert committed == set(generated), FIX
    for name, content in generated.items():
        assert (DASHBOARDS_DIR / name).read_text() == content, f"{name} is stale: {FIX}"


def test_the_four_dashboards_have_queries_without_template_variables() -> None:
    uids = set()
    for content in dashboards().values():
        document = json.loads(content)
        uids.add(document["uid"])
        queries = panel_queries(document)
        assert queries, document["uid"]
        # The live test runs every query as written: no Grafana variables allowed.
        assert not [expr for _, expr in queries if "$" in expr]
    assert uids == {"testbed-services", "testbed-dependencies", "testbed-slo", "testbed-log-pipeline"}


def test_datasource_uids_match_the_dashboards() -> None:
    provisioned = yaml.safe_load((STACK_DIR / "grafana/provisioning/datasources/datasources.yml").read_text())
    uids = {source["uid"] for source in provisioned["datasources"]}
    for content in dashboards().values():
        for panel in json.loads(content)["panels"]:
            if panel.get("datasource"):
                assert panel["datasource"]["uid"] in uids


def test_grafana_ini_has_no_anonymous_access_and_no_literal_password() -> None:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(STACK_DIR / "grafana" / "grafana.ini")
    assert ini.getboolean("auth.anonymous", "enabled") is False
    assert ini.get("security", "admin_password").startswith("$__file{")
    assert ini.get("users", "auto_assign_org_role") == "Viewer"
    assert ini.getboolean("users", "allow_sign_up") is False


def _documents() -> dict[str, dict]:
    return {name: json.loads(content) for name, content in dashboards().items()}


def test_every_dashboard_passes_grafanas_dashboard_schema() -> None:
    for name, document in _documents().items():
        assert schema_problems(document) == [], name


def test_schema_check_catches_unknown_keys_wrong_types_missing_ids_and_panels_off_the_grid() -> None:
    document = _documents()["testbed-dependencies.json"]
    panels = document["panels"]
    panels[1]["titel"] = "typo"
    panels[2]["gridPos"] = {**panels[2]["gridPos"], "x": 18, "w": 12}  # the first render's defect
    panels[3]["gridPos"] = {**panels[3]["gridPos"], "h": "tall"}
    panels[4].pop("id")
    problems = schema_problems(document)
    assert any("titel" in p for p in problems), problems
    assert any("x=18 w=12 leaves the 24-column grid" in p for p in problems), problems
    assert any("grid_pos.h: expected int" in p for p in problems), problems
    assert any("panel ids missing or repeated" in p for p in problems), problems


def test_panel_ids_are_stable_when_a_panel_is_added() -> None:
    before = {p["title"]: p["id"] for p in _documents()["testbed-log-pipeline.json"]["panels"]}
    panels = [dict(p) for p in _documents()["testbed-log-pipeline.json"]["panels"]]
    panels.insert(
        0, {"type": "timeseries", "title": "A new first panel", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8}}
    )
    layout(panels)
    after = {p["title"]: p["id"] for p in panels}
    assert {title: after[title] for title in before} == before


# Counters the exporters name without a _total suffix (postgres_exporter's pg_stat_database columns).
COUNTERS_WITHOUT_SUFFIX = {"pg_stat_database_xact_commit", "pg_stat_database_xact_rollback"}
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")


def _non_counters(expressions: list[str]) -> list[str]:
    return [
        f"{function}({metric})"
        for expr in expressions
        for function, metric in counter_functions(expr)
        if not metric.endswith(COUNTER_SUFFIXES) and metric not in COUNTERS_WITHOUT_SUFFIX
    ]


def _rule_expressions() -> list[str]:
    return [
        rule["expr"]
        for path in (STACK_DIR / "prometheus" / "rules").glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_rate_and_increase_only_on_counters() -> None:
    panels = [expr for document in _documents().values() for _, expr in panel_queries(document)]
    assert len(panels) > 20 and _rule_expressions()
    assert _non_counters(panels + _rule_expressions()) == []


def test_counter_check_catches_the_docs_gauge() -> None:
    """The first render: rate() over elasticsearch_indices_docs_primary (a gauge) in the log dashboard
    and increase() over it in LogPipelineStalled."""
    old = [
        'sum(rate(elasticsearch_indices_docs_primary{index=~"logs-testbed-.*"}[1m]))',
        'sum(increase(elasticsearch_indices_docs_primary{index=~"logs-testbed-.*"}[2m]))',
    ]
    assert _non_counters(old) == [
        "rate(elasticsearch_indices_docs_primary)",
        "increase(elasticsearch_indices_docs_primary)",
    ]


def test_no_panel_masks_a_missing_metric_with_vector_0() -> None:
    """A panel's live check must be able to fail when its metric does not exist."""
    masked = [
        f"{document['uid']} / {title}"
        for document in _documents().values()
        for title, expr in panel_queries(document)
        if "or vector(0)" in expr.replace(" ", "").replace("orvector", "or vector")
    ]
    assert masked == []
