"""Orders through the live native stack: REST and the queue, traces across services, redaction."""

from __future__ import annotations

import json
import secrets
import threading
import time

import httpx
import pytest

from services import openapi as openapi_documents
from testbed.context import RenderContext
from testbed.native.control import NativeStack
from tests.services.shop_client import log_lines, metric, place_order, url, wait_final, wait_for

pytestmark = pytest.mark.native


@pytest.mark.parametrize("instance", [0, 1])
def test_an_order_reaches_paid_through_the_queue(native_stack: RenderContext, instance: int):
    placed_before = metric(native_stack, "orders", "orders_placed_total")
    accepted = place_order(native_stack, "mug", 2, instance=instance)
    assert accepted["status"] == "placed" and accepted["amount_cents"] == 2400
    settled = wait_final(native_stack, accepted["order_id"])
    assert settled["status"] == "paid"
    assert metric(native_stack, "orders", "orders_placed_total") == placed_before + 1


def test_a_declined_payment_is_reported(native_stack: RenderContext):
    accepted = place_order(native_stack, "espresso-machine", 1)  # above the card limit
    settled = wait_final(native_stack, accepted["order_id"])
    assert settled["status"] == "payment_failed"
    assert settled["failure_reason"].startswith("declined")


def test_one_trace_id_in_every_service_log(native_stack: RenderContext):
    trace_id = secrets.token_hex(16)
    headers = {
        "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
        "x-request-id": f"it-{trace_id[:8]}",
    }
    accepted = place_order(native_stack, "kettle", 1, headers=headers)
    wait_final(native_stack, accepted["order_id"])

    def every_service_logged() -> list[dict] | None:
        lines = log_lines(native_stack, trace_id)
        services = {line["service"]["name"] for line in lines}
        return lines if {"gateway", "inventory", "orders", "payments"} <= services else None

    lines = wait_for(every_service_logged, 10, "log lines of every service with the trace id")
    for line in lines:
        assert line["trace"]["id"] == trace_id
        assert line["event"]["id"] and line["event"]["dataset"].startswith(f"shop.{line['service']['name']}.")
    access = [line for line in lines if line["event"]["dataset"] == "shop.gateway.access"]
    assert access[0]["http"]["request"]["id"] == headers["x-request-id"]
    assert access[0]["http"]["response"]["status_code"] == 202
    assert access[0]["event"]["duration"] > 0
    assert access[0]["url"]["path"] == "/orders"


def test_sensitive_values_never_reach_the_log_files(native_stack: RenderContext):
    email = f"jane.{secrets.token_hex(4)}@example.com"
    accepted = place_order(native_stack, "mug", 1, customer_email=email)
    wait_for(lambda: log_lines(native_stack, accepted["order_id"]), 10, "the order's log lines")
    assert log_lines(native_stack, email) == []
    requested = [
        line
        for line in log_lines(native_stack, accepted["order_id"])
        if line.get("event", {}).get("action") == "order-requested"
    ]
    assert requested and "[REDACTED]" in requested[0]["message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"product_id": "no-such-thing", "quantity": 1}, 404),
        ({"product_id": "sold-out-tin", "quantity": 1}, 409),
        ({"product_id": "mug", "quantity": -3}, 422),
    ],
)
def test_business_errors_are_problems(native_stack: RenderContext, body: dict, status: int):
    answer = httpx.post(f"{url(native_stack, 'gateway')}/orders", json=body, timeout=10)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"


def test_every_instance_is_ready_and_serves_the_committed_openapi(native_stack: RenderContext):
    for service in ("gateway", "inventory", "orders", "payments", "alert_sink"):
        for instance in range(len(native_stack.ports[service])):
            base = url(native_stack, service, instance)
            assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
            served = httpx.get(f"{base}/openapi.json", timeout=10).json()
            assert served == json.loads(openapi_documents.committed_path(service).read_text())


def test_order_status_of_unknown_order_is_404(native_stack: RenderContext):
    answer = httpx.get(
        f"{url(native_stack, 'gateway')}/orders/00000000-0000-4000-8000-000000000000", timeout=10
    )
    assert answer.status_code == 404


def test_graceful_shutdown_finishes_in_flight_requests(native_stack: RenderContext):
    base = url(native_stack, "gateway", 1)
    auth = {"authorization": f"Bearer {native_stack.secrets.fault_admin_token}"}
    slow = httpx.put(f"{base}/admin/faults", json={"latency_ms": 1500, "ttl_s": 60}, headers=auth, timeout=10)
    assert slow.status_code == 200
    result: dict[str, int] = {}
    request = threading.Thread(
        target=lambda: result.update(status=httpx.get(f"{base}/catalog", timeout=15).status_code)
    )
    request.start()
    stack = NativeStack()
    try:
        time.sleep(0.4)  # the request is now inside its injected delay
        stack.stop("gateway-1")  # SIGTERM
        request.join(timeout=15)
        assert result.get("status") == 200
    finally:
        stack.start("gateway-1")  # back, and its faults are gone with the old process


def test_a_retried_order_with_the_same_idempotency_key_is_placed_once(native_stack: RenderContext):
    key = {"idempotency-key": f"it-{secrets.token_hex(8)}"}
    first = place_order(native_stack, "filter-papers", 3, headers=key)
    again = place_order(native_stack, "filter-papers", 3, headers=key)
    assert again["order_id"] == first["order_id"]
    assert wait_final(native_stack, first["order_id"])["status"] == "paid"
    conflicting = httpx.post(
        f"{url(native_stack, 'gateway', 1)}/orders",
        headers=key,
        timeout=10,
        json={"product_id": "filter-papers", "quantity": 4},
    )
    assert conflicting.status_code == 409
