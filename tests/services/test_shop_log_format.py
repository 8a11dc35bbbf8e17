"""The services' real log lines follow Elastic's ECS logging spec, and Elasticsearch still reads them.

Lines are taken from the running services' files after traffic that makes every kind of line (access
info/warning, application lines of every service, lifecycle lines), then checked against the spec's
rules (tests/unit/services/ecs_spec.py). The dotted top-level ``log.level`` must still be a ``log.level``
field once shipped: a term query on it finds the request's access line.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from testbed.context import RenderContext
from testbed.logs import clients, layout
from testbed.native.control import NativeStack
from tests.services.shop_client import place_order, url, wait_final, wait_for
from tests.unit.services.ecs_spec import violations

pytestmark = pytest.mark.native

SERVICES = ("gateway", "inventory", "orders", "payments", "alert_sink")
LINES_CHECKED_PER_FILE = 2000  # the newest ones: the lines the running code wrote


def _newest_lines(path: Path, count: int, pids: dict[str, int | None]) -> list[str]:
    """The newest lines the running instance wrote (its pid): a kept stack's files also hold lines of
    earlier processes, possibly of older code."""
    component = path.name.removesuffix(".log").removesuffix("-0")  # instance 0 bears the service's name
    pid = pids[component]
    with path.open(encoding="utf-8") as lines:
        return [line for line in list(lines)[-count:] if f'"pid":{pid}}}' in line]


def test_every_service_line_follows_the_ecs_logging_spec(native_stack: RenderContext) -> None:
    marker = f"ecs-{secrets.token_hex(6)}"
    gateway = url(native_stack, "gateway")
    assert httpx.get(f"{gateway}/catalog", headers={"x-request-id": f"{marker}-ok"}, timeout=10).is_success
    missing = httpx.get(
        f"{gateway}/catalog/no-such-thing", headers={"x-request-id": f"{marker}-404"}, timeout=10
    )
    assert missing.status_code == 404
    wait_final(
        native_stack, place_order(native_stack, "mug", 1, headers={"x-request-id": marker})["order_id"]
    )

    files = sorted(Path(native_stack.services_log_dir).glob("*.log"))
    pids = {name: status.pid for name, status in NativeStack().status().items()}
    by_service = {service: [f for f in files if f.name.startswith(f"{service}-")] for service in SERVICES}
    assert all(by_service.values()), f"a service has no log file: {by_service}"
    checked = 0
    for path in files:
        for line in _newest_lines(path, LINES_CHECKED_PER_FILE, pids):
            found = violations(line)
            assert not found, f"{path.name}: {found}: {line[:300]}"
            checked += 1
    assert checked >= 10
    levels = {
        line.split('"log.level":"', 1)[1].split('"', 1)[0]
        for path in files
        for line in _newest_lines(path, LINES_CHECKED_PER_FILE, pids)
        if marker in line
    }
    assert {"info", "warning"} <= levels, levels  # the 404 is a warning access line


def test_top_level_log_level_is_the_log_level_field_in_elasticsearch(native_stack: RenderContext) -> None:
    request_id = f"ecs-es-{secrets.token_hex(6)}"
    answer = httpx.get(
        f"{url(native_stack, 'gateway')}/catalog/no-such-thing",
        headers={"x-request-id": request_id},
        timeout=10,
    )
    assert answer.status_code == 404
    with clients.reader(native_stack) as es:

        def shipped() -> list[dict] | None:
            hits = es.search(
                index=layout.shipping().index_pattern,
                query={
                    "bool": {
                        "filter": [
                            {"term": {"http.request.id": request_id}},
                            {"term": {"log.level": "warning"}},
                            {"term": {"event.dataset": "shop.gateway.access"}},
                        ]
                    }
                },
                size=5,
            )["hits"]["hits"]
            return hits or None

        hits = wait_for(shipped, 60, "the 404 access line found by log.level in Elasticsearch", 0.5)
        assert len(hits) == 1
        # The Kibana saved queries and the alert rules aggregate on the keyword field.
        mapping = es.indices.get_field_mapping(index=hits[0]["_index"], fields="log.level")
        types = {
            m["mappings"]["log.level"]["mapping"]["level"]["type"] for m in mapping.values() if m["mappings"]
        }
        assert types == {"keyword"}

        # Every warning of the request, by the level field alone: the access and application lines
        # of the gateway and of inventory (4 lines, as written in the files).
        def four_warnings() -> list[dict] | None:
            found = es.search(
                index=hits[0]["_index"],
                query={
                    "bool": {
                        "filter": [
                            {"term": {"log.level": "warning"}},
                            {"term": {"transaction.id": request_id}},
                        ]
                    }
                },
                size=10,
            )["hits"]["hits"]
            return found if len(found) >= 4 else None

        warnings = wait_for(four_warnings, 60, "the request's 4 warning lines in Elasticsearch", 0.5)
        seen = sorted((h["_source"]["service"]["name"], h["_source"]["event"]["dataset"]) for h in warnings)
        assert seen == [
            ("gateway", "shop.gateway.access"),
            ("gateway", "shop.gateway.app"),
            ("inventory", "shop.inventory.access"),
            ("inventory", "shop.inventory.app"),
        ]
