"""The sabotage matrix: for every promise a scenario verifies, break exactly that promise on the running
native stack, run a short scenario, and require the verdict to fail *naming the right assertion*; then
undo the sabotage and prove the stack healthy again. Each scenario is also seen green un-sabotaged.

Outcomes land in results/sabotage/matrix.json; `python -m bench.sabotage` renders the README table.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from testbed.context import RenderContext
from testbed.metrics.client import prometheus_client
from testbed.metrics.dashboards import DASHBOARDS_DIR, empty_panel_queries
from testbed.settings import REPO_ROOT
from tests.sabotage import harness
from tests.sabotage.harness import DATA, expect_caught, record_outcome, run

pytestmark = [pytest.mark.native, pytest.mark.slow]

PIPELINE = DATA / "pipeline.yaml"
ALERT = DATA / "alert.yaml"
ALERT_LATE = DATA / "alert-late.yaml"
# What the alert scenarios expect (their YAML says the same): TargetDown for job node within 30 s.
TARGET_DOWN_NODE = ("alert TargetDown{job=node}", "fires within 30 s")


@pytest.fixture(scope="module")
def stack(native_stack: RenderContext) -> RenderContext:
    """The session's stack, healthy before the first sabotage, with this checkout's metrics config."""
    harness.testbed("metrics", "reload")  # the rules and routes of this checkout, not of an older one
    harness.assert_healthy(native_stack)  # every component healthy
    return native_stack


# --- the un-sabotaged runs: each scenario the matrix uses is green on a healthy stack -------------------


@pytest.mark.parametrize("scenario", [PIPELINE, ALERT, DATA / "privacy.yaml"], ids=lambda p: p.stem)
def test_unsabotaged_scenario_passes(stack: RenderContext, tmp_path: Path, scenario: Path) -> None:
    verdict = run(scenario, tmp_path)
    failed = "; ".join(f"{r.name}: {r.observed}" for r in verdict.failed)
    record_outcome(f"baseline-{scenario.stem}", "(un-sabotaged)", "none", None, verdict, note=failed)
    assert verdict.outcome.passed, verdict.explain()


# --- logs -------------------------------------------------------------------------------------------------


def _drop_every_50th_gateway_access_line(conf: str) -> str:
    """An rsyslog filter in the services ruleset discarding every 50th gateway access event, silently."""
    head, marker, tail = conf.partition('ruleset(name="services") {')
    assert marker, "rsyslog.conf has no services ruleset"
    sabotage = (
        "  # SABOTAGE (tests/sabotage): every 50th gateway access line is discarded\n"
        '  if $!event!dataset == "shop.gateway.access" then {\n'
        "    set $/sabotage_seen = $/sabotage_seen + 1;\n"
        "    if $/sabotage_seen % 50 == 0 then stop\n"
        "  }\n"
        "  call ship\n"
    )
    return head + marker + tail.replace("  call ship\n", sabotage, 1)


def test_shipper_dropping_a_share_of_access_logs_fails_completeness(
    stack: RenderContext, tmp_path: Path
) -> None:
    sabotage = harness.rsyslog_config(stack, _drop_every_50th_gateway_access_line)
    with harness.healthy_after(stack, harness.log_arrives(stack)), sabotage:
        verdict = run(PIPELINE, tmp_path)
    caught = expect_caught(
        verdict,
        ("log completeness", "gateway"),
        "shipper-drops-logs",
        "every answered request's access log reaches Elasticsearch",
        "rsyslog filter discards every 50th gateway access line",
    )
    assert "lost" in caught.detail


def _delay_shipping_10s(conf: str) -> str:
    """The Elasticsearch action's queue holds every batch 10 s before sending it."""
    anchor = 'queue.dequeueBatchSize="2000"'
    assert anchor in conf
    return conf.replace(
        anchor, anchor + ' queue.minDequeueBatchSize="2000" queue.minDequeueBatchSize.timeout="10000"', 1
    )


def test_shipping_delayed_10s_fails_log_lag(stack: RenderContext, tmp_path: Path) -> None:
    sabotage = harness.rsyslog_config(stack, _delay_shipping_10s)
    with harness.healthy_after(stack, harness.log_arrives(stack)), sabotage:
        verdict = run(PIPELINE, tmp_path)
    expect_caught(
        verdict,
        ("log lag",),
        "shipping-delayed",
        "access logs are searchable within the lag budget (8 s)",
        "rsyslog's Elasticsearch queue holds each batch 10 s",
    )


# --- metrics ----------------------------------------------------------------------------------------------


def _gateway_0_target(stack: RenderContext) -> str:
    return stack.address("gateway")


def test_scrape_target_removed_fails_cross_signal(stack: RenderContext, tmp_path: Path) -> None:
    target = _gateway_0_target(stack)  # the instance Locust's traffic goes to

    def drop_target(document: Any) -> None:
        (job,) = [j for j in document["scrape_configs"] if j["job_name"] == "gateway"]
        for static in job["static_configs"]:
            assert target in static["targets"], static
            static["targets"].remove(target)

    def target_scraped() -> str | None:
        up = harness.prometheus_query(stack, f'up{{job="gateway",instance="{target}"}} == 1')
        return None if up else f"gateway target {target} not scraped"

    with (
        harness.healthy_after(stack, target_scraped),
        harness.metrics_config(
            stack, harness.prometheus_dir(stack) / "prometheus.yml", harness.yaml_edit(drop_target)
        ),
    ):
        verdict = run(PIPELINE, tmp_path)
    expect_caught(
        verdict,
        ("cross-signal",),
        "scrape-target-removed",
        "Locust, Prometheus and Elasticsearch count the same requests",
        f"gateway target {target} removed from prometheus.yml",
    )


def _rules_file(stack: RenderContext) -> Path:
    return harness.prometheus_dir(stack) / "rules" / "symptoms.yml"


def _target_down_rule(document: Any) -> dict[str, Any]:
    rules = [r for g in document["groups"] for r in g["rules"] if r.get("alert") == "TargetDown"]
    assert len(rules) == 1, rules
    rule: dict[str, Any] = rules[0]
    return rule


def _target_down_loaded(stack: RenderContext, for_s: float) -> str | None:
    rule = harness.prometheus_rules(stack).get("TargetDown")
    if rule is None:
        return "TargetDown is not loaded"
    return None if rule["duration"] == for_s else f"TargetDown has for: {rule['duration']} s"


def test_alert_rule_removed_fails_expected_alert(stack: RenderContext, tmp_path: Path) -> None:
    def remove(document: Any) -> None:
        for group in document["groups"]:
            group["rules"] = [r for r in group["rules"] if r.get("alert") != "TargetDown"]

    sabotage = harness.metrics_config(stack, _rules_file(stack), harness.yaml_edit(remove))
    with harness.healthy_after(stack, lambda: _target_down_loaded(stack, 10)), sabotage:
        assert "TargetDown" not in harness.prometheus_rules(stack)
        verdict = run(ALERT, tmp_path)
    caught = expect_caught(
        verdict,
        TARGET_DOWN_NODE,
        "alert-rule-removed",
        "the expected alert fires (presence)",
        "TargetDown removed from the rendered rules, Prometheus reloaded",
    )
    assert caught.observed == "never fired", caught


def test_alert_for_raised_fails_time_to_fire(stack: RenderContext, tmp_path: Path) -> None:
    def slow_down(document: Any) -> None:
        _target_down_rule(document)["for"] = "40s"  # fires at 45-55 s, budget 30 s

    sabotage = harness.metrics_config(stack, _rules_file(stack), harness.yaml_edit(slow_down))
    with harness.healthy_after(stack, lambda: _target_down_loaded(stack, 10)), sabotage:
        assert _target_down_loaded(stack, 40) is None
        verdict = run(ALERT_LATE, tmp_path)
    caught = expect_caught(
        verdict,
        TARGET_DOWN_NODE,
        "alert-for-raised",
        "the expected alert fires within its budget (30 s)",
        "TargetDown's for: raised from 10s to 40s",
    )
    seconds = float(re.sub(r"[^0-9.]", "", caught.observed))  # it fired, late: "48.2 s"
    assert seconds > 30, caught


def test_alertmanager_route_to_a_dropping_receiver_fails_alert_at_sink(
    stack: RenderContext, tmp_path: Path
) -> None:
    def blackhole(document: Any) -> None:
        document["receivers"].append({"name": "blackhole"})  # a receiver with no integration: drops
        document["route"]["routes"].insert(
            0, {"receiver": "blackhole", "matchers": ['alertname="TargetDown"']}
        )

    path = stack.config_dir / "alertmanager" / "alertmanager.yml"
    with harness.healthy_after(stack), harness.metrics_config(stack, path, harness.yaml_edit(blackhole)):
        verdict = run(ALERT, tmp_path)
        # Prometheus did fire it: what failed is the delivery, not the rule.
        fired = harness.prometheus_query(
            stack, 'max_over_time(ALERTS{alertname="TargetDown",job="node",alertstate="firing"}[5m])'
        )
        assert fired, "Prometheus never fired TargetDown: this run did not test the route"
    caught = expect_caught(
        verdict,
        TARGET_DOWN_NODE,
        "alert-route-drops",
        "the alert reaches the sink",
        "Alertmanager routes TargetDown to a receiver with no integration",
    )
    assert caught.observed == "never fired" and "alert sink" in caught.detail, caught


# --- dashboards -------------------------------------------------------------------------------------------


def test_dashboard_panel_on_a_missing_metric_fails_panel_check(stack: RenderContext, tmp_path: Path) -> None:
    """A copy of the dependencies dashboard whose "PostgreSQL up" panel queries a metric nobody exports:
    the panel check tests/metrics runs on the committed dashboards names that panel, and only it."""
    started = time.monotonic()
    source = DASHBOARDS_DIR / "testbed-dependencies.json"
    sabotaged = tmp_path / source.name
    sabotaged.write_text(source.read_text())

    with prometheus_client(stack) as client:

        def query(expr: str) -> list[Any]:
            answer = client.get("/api/v1/query", params={"query": expr})
            answer.raise_for_status()
            result: list[Any] = answer.json()["data"]["result"]
            return result

        assert empty_panel_queries(query, tmp_path) == []  # un-sabotaged: every panel has data
        document = json.loads(sabotaged.read_text())
        (panel,) = [p for p in document["panels"] if p.get("title") == "PostgreSQL up"]
        assert [t["expr"] for t in panel["targets"]] == ["pg_up"]
        panel["targets"][0]["expr"] = "pg_is_up"  # no exporter has this metric
        sabotaged.write_text(json.dumps(document))
        empty = empty_panel_queries(query, tmp_path)
    assert empty == ["testbed-dependencies / PostgreSQL up: pg_is_up"], empty
    harness.record_check_outcome(
        "dashboard-panel-missing-metric",
        "every dashboard panel's query returns data",
        'panel "PostgreSQL up" queries pg_is_up (no such metric)',
        f"panel check: {empty[0]}",
        time.monotonic() - started,
    )


# --- false greens closed by the verifier (issue 10, section 2) -------------------------------------------
# The must-stay-green case (a gateway restarted mid-run, the counts still agree) is the verifier's own
# live test: tests/scenario/test_scenarios_native.py::test_counts_agree_across_a_gateway_restart.


def test_alert_firing_before_the_run_fails_forbidden_alert(stack: RenderContext, tmp_path: Path) -> None:
    """node_exporter's target made unreachable (scraped on a closed port) before the run: TargetDown
    fires while every component stays healthy, so the runner's stack check cannot mend it."""

    def unreachable(document: Any) -> None:
        (job,) = [j for j in document["scrape_configs"] if j["job_name"] == "node"]
        job["static_configs"] = [{"targets": ["127.0.0.1:9"]}]  # discard port: connection refused

    sabotage = harness.metrics_config(
        stack, harness.prometheus_dir(stack) / "prometheus.yml", harness.yaml_edit(unreachable)
    )
    with harness.healthy_after(stack), sabotage:
        harness.wait_for(
            lambda: "TargetDown{node}" in harness.active_alerts(stack), 90, "TargetDown{node} active"
        )
        # The verifier's choice (scenarios/README.md): the run goes ahead and fails the forbidden alert.
        verdict = run(PIPELINE, tmp_path)
    expect_caught(
        verdict,
        ("alert TargetDown does not fire",),
        "alert-firing-before-run",
        "no forbidden alert fires (before, during or after the run)",
        "node_exporter scraped on a closed port before the run: TargetDown already firing",
    )


def _kill_locust() -> None:
    """SIGKILL the Locust process this test session's runner started, as a crash would."""
    (locust,) = [
        child
        for child in psutil.Process().children(recursive=True)
        if any("locustfile" in part for part in child.cmdline())
    ]
    locust.kill()


def test_locust_crashing_mid_run_fails_the_run(stack: RenderContext, tmp_path: Path) -> None:
    with harness.healthy_after(stack), harness.later(7, _kill_locust):
        verdict = run(PIPELINE, tmp_path)
    expect_caught(
        verdict,
        ("Locust exited cleanly",),
        "locust-crashes",
        "the load ran as planned (Locust's own verdict)",
        "Locust SIGKILLed 7 s into the run",
    )


def test_load_short_of_its_planned_volume_fails_the_run(stack: RenderContext, tmp_path: Path) -> None:
    # Each of the 5 users wants 2 requests/s; 1 s added to every gateway answer caps it near 1/s.
    with harness.healthy_after(stack), harness.fault_flags(stack, "gateway", latency_ms=1000):
        verdict = run(PIPELINE, tmp_path)
    expect_caught(
        verdict,
        ("of the planned volume",),
        "locust-short-volume",
        "the load achieved ≥ 90 % of its planned volume",
        "1 s added to every gateway answer (fault flag): Locust reaches about half its rate",
    )


def test_latency_injected_on_inventory_fails_smoke_latency(stack: RenderContext, tmp_path: Path) -> None:
    """smoke.yaml's own latency assertions, on a 15-s load (the rest of smoke is other cases' business)."""
    smoke = yaml.safe_load((REPO_ROOT / "scenarios" / "smoke.yaml").read_text())
    short = {
        "name": "smoke-latency",
        "description": "smoke's latency assertions on a short load",
        "load": {**smoke["load"], "duration_s": 15},
        "settle_s": 15,
        "assertions": {"latency": smoke["assertions"]["latency"]},
    }
    scenario = tmp_path / "smoke-latency.yaml"
    scenario.write_text(yaml.safe_dump(short))
    with harness.healthy_after(stack), harness.fault_flags(stack, "inventory", latency_ms=300):
        verdict = run(scenario, tmp_path / "results")
    expect_caught(
        verdict,
        ("latency",),
        "latency-injected",
        "smoke's latency SLOs hold",
        "300 ms added to every inventory answer (fault flag)",
    )


# --- privacy ----------------------------------------------------------------------------------------------


def test_redaction_disabled_fails_no_personal_data(stack: RenderContext, tmp_path: Path) -> None:
    with harness.healthy_after(stack), harness.fault_flags(stack, "gateway", log_redaction=False):
        verdict = run(DATA / "privacy.yaml", tmp_path)
    caught = expect_caught(
        verdict,
        ("no personal data in Elasticsearch",),
        "redaction-disabled",
        "no personal data (e-mail, card number) in Elasticsearch",
        "the gateway's log redaction switched off (fault flag); the load sends an e-mail, a card number",
    )
    assert "shop.gateway" in caught.detail, caught
