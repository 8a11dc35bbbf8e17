"""The metrics stack against the live native stack: targets, exporters, retention, dashboards, archive.

Run against a private stack with TESTBED_STATE_DIR/TESTBED_PORT_OFFSET (the `native_stack` fixture
reuses a healthy one). Alert round trips are in test_metrics_alerts.py.
"""

from __future__ import annotations

import json
import ssl
import time

import httpx
import pytest
from prometheus_api_client import PrometheusConnect

from testbed.context import RenderContext
from testbed.metrics.archive import archive
from testbed.metrics.client import prometheus_client
from testbed.metrics.dashboards import DASHBOARDS_DIR, empty_panel_queries
from testbed.metrics.policy import load_policy, parse_duration, parse_size
from testbed.metrics.probes import shop_traffic
from testbed.metrics.scrape import SERVICES

pytestmark = pytest.mark.native

EXPECTED_JOBS = {
    *SERVICES,
    "node",
    "postgres",
    "elasticsearch",
    "rabbitmq",
    "blackbox",
    "blackbox_exporter",
    "rsyslog",
    "prometheus",
    "alertmanager",
}

# One key metric per exporter, and the value it must have on a healthy stack (None: any value).
KEY_METRICS = {
    "node_exporter": ("node_filesystem_avail_bytes", None),
    "postgres_exporter": ("pg_up", 1.0),
    # exporter >= 1.7: the health series are present only while /_cluster/health answers.
    "elasticsearch_exporter": ("elasticsearch_cluster_health_number_of_nodes", 1.0),
    "elasticsearch_exporter (indices)": (
        'elasticsearch_indices_docs_primary{index=~"logs-testbed-.*"}',
        None,
    ),
    "rabbitmq_prometheus": ('rabbitmq_queue_messages_ready{queue="payments.order-placed"}', None),
    "blackbox_exporter": ('probe_success{job="blackbox"}', 1.0),
    "rsyslog (stats exporter)": ('rsyslog_action_processed_total{action="elasticsearch"}', None),
    "prometheus": ("prometheus_build_info", 1.0),
    "alertmanager": ("alertmanager_build_info", 1.0),
}


def wait_for_series(prom: PrometheusConnect, expr: str, timeout_s: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    result: list[dict] = []
    while time.monotonic() < deadline:
        result = prom.custom_query(expr)
        if result:
            return result
        time.sleep(2)
    return result


def test_every_target_is_up(native_stack: RenderContext, prom: PrometheusConnect) -> None:
    # Right after a config reload Prometheus needs a scrape round or two per target.
    deadline = time.monotonic() + 60
    while True:
        result = prom.custom_query("up")
        jobs = {series["metric"]["job"] for series in result}
        down = [s["metric"] for s in result if s["value"][1] != "1"]
        if (jobs >= EXPECTED_JOBS and not down) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert jobs >= EXPECTED_JOBS, f"jobs not scraped: {EXPECTED_JOBS - jobs}"
    assert not down, f"targets down: {down}"
    gateways = [s for s in result if s["metric"]["job"] == "gateway"]
    assert len(gateways) == len(native_stack.ports["gateway"])


@pytest.mark.parametrize("exporter", sorted(KEY_METRICS))
def test_exporter_key_metric_present(prom: PrometheusConnect, exporter: str) -> None:
    expr, expected = KEY_METRICS[exporter]
    result = wait_for_series(prom, expr)
    assert result, f"{exporter}: no series for {expr}"
    if expected is not None:
        assert all(float(s["value"][1]) == expected for s in result), result


# The compose images' versions (stack/versions.yaml), written out: natively the same builds must run.
RUNNING_VERSIONS = {
    "prometheus_build_info": "3.5.0",
    "alertmanager_build_info": "0.28.1",
    "node_exporter_build_info": "1.9.1",
    "postgres_exporter_build_info": "0.17.1",
    "elasticsearch_exporter_build_info": "1.9.0",
    "blackbox_exporter_build_info": "0.27.0",
}


@pytest.mark.parametrize("metric", sorted(RUNNING_VERSIONS))
def test_the_running_engine_is_the_compose_version(prom: PrometheusConnect, metric: str) -> None:
    versions = {series["metric"].get("version") for series in wait_for_series(prom, metric)}
    assert versions == {RUNNING_VERSIONS[metric]}


def test_prometheus_ui_place_says_why_the_ui_is_absent(native_stack: RenderContext) -> None:
    """Built without the npm UI, Prometheus would answer its UI pages with a bare 500."""
    response = httpx.get(
        f"https://{native_stack.address('prometheus')}/alerts",
        auth=("testbed", native_stack.secrets.prometheus_password),
        verify=ssl.create_default_context(cafile=native_stack.ca_cert),
        timeout=30,
    )
    assert response.status_code == 200, response.text[:200]
    assert "web UI: not built in the native stack" in response.text
    assert "/api/v1/query" in response.text  # and what to use instead


def test_retention_comes_from_the_policy(native_stack: RenderContext) -> None:
    with prometheus_client(native_stack) as client:
        flags = client.get("/api/v1/status/flags").json()["data"]
    retention = load_policy().retention
    # Prometheus prints durations its own way (7d -> 1w): compare seconds.
    assert parse_duration(flags["storage.tsdb.retention.time"]) == parse_duration(retention.time)
    assert parse_size(flags["storage.tsdb.retention.size"]) == parse_size(retention.size)
    assert flags["web.enable-admin-api"] == "true"


def test_prometheus_and_alertmanager_refuse_anonymous_and_plain_http(native_stack: RenderContext) -> None:
    import httpx

    from testbed.metrics.client import _tls

    for name in ("prometheus", "alertmanager"):
        address = native_stack.address(name)
        assert httpx.get(f"https://{address}/-/ready", verify=_tls(native_stack)).status_code == 401
        # The exact refusal of Go's TLS listener, not "some 4xx" (a 401/404 over plain HTTP would pass that).
        plain = httpx.get(f"http://{address}/-/ready", timeout=5)
        assert (plain.status_code, plain.text) == (400, "Client sent an HTTP request to an HTTPS server.\n")


@pytest.mark.slow
def test_every_dashboard_query_returns_series_after_load(
    native_stack: RenderContext, prom: PrometheusConnect
) -> None:
    window = parse_duration(load_policy().symptom_rate_window)
    with shop_traffic(native_stack) as traffic:
        # Two rate windows of traffic, so every rate()/recording rule has samples.
        time.sleep(2 * window + 10)
    assert traffic.sent > 0
    empty = empty_panel_queries(prom.custom_query, DASHBOARDS_DIR)
    assert not empty, "panel queries without series:\n" + "\n".join(empty)


def test_archive_metrics_snapshot_restores_into_a_scratch_prometheus(
    native_stack: RenderContext, prom: PrometheusConnect, tmp_path
) -> None:
    import socket
    import subprocess
    import tarfile

    from testbed.native.stack import GO_BUILT

    # A series known to be in the snapshot: one `up` series of the live Prometheus, just before it.
    known = prom.custom_query("up == 1")[0]["metric"]
    taken_at = time.time()
    tarball = archive(native_stack, tmp_path / "metrics.tar.gz")
    with tarfile.open(tarball) as packed:
        packed.extractall(tmp_path / "restored", filter="data")
    (tsdb,) = (tmp_path / "restored").iterdir()
    config = tmp_path / "prometheus.yml"
    config.write_text("global: {}\n")
    with socket.socket() as probe:  # a free port on loopback for the scratch server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scratch = subprocess.Popen(
        [
            str(GO_BUILT("prometheus")),
            f"--config.file={config}",
            f"--storage.tsdb.path={tsdb}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=10y",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        selector = "up{" + ",".join(f'{k}="{v}"' for k, v in sorted(known.items()) if k != "__name__") + "}"
        answer = httpx.get(f"{base}/api/v1/query", params={"query": selector, "time": taken_at}, timeout=10)
        assert answer.status_code == 200, answer.text
        result = answer.json()["data"]["result"]
        assert [float(r["value"][1]) for r in result] == [1.0], f"{selector} not restored: {result}"
    finally:
        scratch.terminate()
        scratch.wait(timeout=30)


def test_elasticsearch_panel_aggregation_returns_buckets(native_stack: RenderContext) -> None:
    """The log-pipeline dashboard's Elasticsearch panel, as the logs_reader user Grafana uses."""
    from elasticsearch import Elasticsearch

    document = json.loads((DASHBOARDS_DIR / "testbed-log-pipeline.json").read_text())
    (target,) = [t for p in document["panels"] for t in p.get("targets") or [] if "bucketAggs" in t]
    terms, histogram = target["bucketAggs"]
    client = Elasticsearch(
        f"https://{native_stack.address('elasticsearch')}",
        ca_certs=str(native_stack.ca_cert),
        basic_auth=("logs_reader", native_stack.secrets.logs_reader_password),
    )
    answer = client.search(
        index="logs-testbed-*",
        size=0,
        query={"range": {target["timeField"]: {"gte": "now-30m"}}},
        aggs={
            "levels": {
                "terms": {"field": terms["field"]},
                "aggs": {
                    "over_time": {"date_histogram": {"field": histogram["field"], "fixed_interval": "1m"}}
                },
            }
        },
    )
    levels = {bucket["key"] for bucket in answer["aggregations"]["levels"]["buckets"]}
    assert levels, "no log events in the last 30 minutes"
    assert "info" in levels, levels
