"""Least privilege on the running native stack: no secret on any command line, the alert sink's webhook
closed to anyone without Alertmanager's credential, the Elasticsearch exporter not the superuser."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from testbed.context import RenderContext
from testbed.secrets import Secrets

pytestmark = pytest.mark.native


def command_lines_with_secrets(secrets: Secrets, proc: Path = Path("/proc")) -> list[str]:
    """``pid: field`` for each process whose argv holds one of the stack's secret values."""
    values = {field: value for field, value in secrets.model_dump().items() if len(value) >= 12}
    found = []
    for cmdline in proc.glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue  # the process ended meanwhile
        found += [f"{cmdline.parent.name}: {field}" for field, value in values.items() if value in argv]
    return found


def test_no_process_has_a_secret_on_its_command_line(native_stack: RenderContext) -> None:
    """/proc/<pid>/cmdline is world-readable: DSNs and passwords go through the environment or files."""
    assert command_lines_with_secrets(native_stack.secrets) == []


def test_the_cmdline_scan_sees_a_password_in_argv(native_stack: RenderContext) -> None:
    import subprocess
    import sys

    password = native_stack.secrets.postgres_password
    dsn = f"postgresql://testbed:{password}@127.0.0.1:1/x"
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", dsn]) as child:
        try:
            assert f"{child.pid}: postgres_password" in command_lines_with_secrets(native_stack.secrets)
        finally:
            child.kill()


def test_alert_sink_webhook_refuses_a_caller_without_the_credential(native_stack: RenderContext) -> None:
    url = f"http://{native_stack.address('alert_sink')}/webhook"
    body = {"version": "4", "groupKey": "x", "status": "firing", "receiver": "r", "alerts": []}
    assert httpx.post(url, json=body, timeout=10).status_code == 401
    wrong = httpx.post(url, json=body, auth=("alertmanager", "not-the-password"), timeout=10)
    assert wrong.status_code == 401
    right = httpx.post(
        url, json=body, auth=("alertmanager", native_stack.secrets.alert_sink_password), timeout=10
    )
    assert right.status_code == 200


def test_elasticsearch_exporter_reads_the_cluster_as_a_monitoring_user(native_stack: RenderContext) -> None:
    response = httpx.get(f"http://{native_stack.address('elasticsearch_exporter')}/metrics", timeout=30)
    metrics = response.text
    assert "elasticsearch_cluster_health_status{" in metrics, "the exporter cannot read cluster health"
    # --es.indices: index stats and aliases need the role's indices privileges (a first, cluster-only role
    # left these out: the exporter logged 403s and LogPipelineStalled's counter vanished).
    assert 'elasticsearch_index_stats_indexing_index_total{cluster="' in metrics
    assert 'index="logs-testbed-' in metrics, "no per-index series for the log indices"
    es = f"https://{native_stack.address('elasticsearch')}"
    auth = ("metrics_exporter", native_stack.secrets.metrics_exporter_password)
    ca = ssl.create_default_context(cafile=str(native_stack.ca_cert))
    with httpx.Client(verify=ca, auth=auth, timeout=10) as client:
        assert client.get(f"{es}/_cluster/health").status_code == 200
        assert client.post(f"{es}/logs-testbed-*/_search", json={"size": 1}).status_code == 403
