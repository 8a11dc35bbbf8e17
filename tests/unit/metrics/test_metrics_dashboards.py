"""Dashboards as code: committed JSON equals the generated one; every panel queries Prometheus sanely."""

from __future__ import annotations

import configparser
import json

import yaml

from testbed.metrics.dashboards import DASHBOARDS_DIR, dashboards, panel_queries
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
