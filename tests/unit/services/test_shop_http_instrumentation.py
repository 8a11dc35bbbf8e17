"""The shared HTTP instrumentation, exercised through a real service app (the alert sink) over ASGI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from services.alert_sink.app import AlertSinkSettings, create_app
from services.common.faults import FaultSpec, FaultState

TOKEN = "test-token"


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = AlertSinkSettings(
        service_name="alert_sink",
        port=1,
        history_file=tmp_path / "alerts.jsonl",
        fault_admin_token=SecretStr(TOKEN),
        webhook_password=SecretStr("unused"),
    )  # type: ignore[call-arg]
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://sink") as client:
        yield client


def _count(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "http_requests_total", {"service": "alert_sink", "method": "GET", "route": route, "status": status}
    )
    return value or 0.0


async def test_route_label_is_the_template_never_the_raw_path(sink: httpx.AsyncClient):
    before = _count("<unmatched>", "404")
    for index in range(5):
        answer = await sink.get(f"/no/such/path/{index}")
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
    assert _count("<unmatched>", "404") == before + 5
    exposition = (await sink.get("/metrics")).text
    assert "/no/such/path" not in exposition
    await sink.get("/alerts")
    assert 'route="/alerts"' in (await sink.get("/metrics")).text


async def test_duration_buckets_fit_the_slos(sink: httpx.AsyncClient):
    await sink.get("/alerts")
    exposition = (await sink.get("/metrics")).text
    for bucket in ("0.005", "0.1", "0.25", "0.5", "2.5"):
        assert (
            f'http_request_duration_seconds_bucket{{le="{bucket}",method="GET",route="/alerts"' in exposition
        )
    assert "http_requests_in_flight" in exposition
    assert "process_cpu_seconds_total" in exposition


async def test_request_id_and_traceparent_come_back(sink: httpx.AsyncClient):
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    answer = await sink.get("/healthz", headers={"x-request-id": "load-7", "traceparent": parent})
    assert answer.headers["x-request-id"] == "load-7"
    assert answer.headers["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"


async def test_fault_admin_needs_the_token(sink: httpx.AsyncClient):
    assert (await sink.put("/admin/faults", json={"error_rate": 1})).status_code == 401
    wrong = {"authorization": "Bearer nope"}
    assert (await sink.put("/admin/faults", json={"error_rate": 1}, headers=wrong)).status_code == 401


async def test_injected_errors_latency_and_clearing(sink: httpx.AsyncClient):
    auth = {"authorization": f"Bearer {TOKEN}"}
    changes = REGISTRY.get_sample_value(
        "fault_injection_changes_total", {"service": "alert_sink", "action": "set"}
    )
    answer = await sink.put(
        "/admin/faults", json={"error_rate": 1.0, "latency_ms": 50, "ttl_s": 60}, headers=auth
    )
    assert answer.status_code == 200 and answer.json()["active"] is True
    assert (
        REGISTRY.get_sample_value("fault_injection_changes_total", {"service": "alert_sink", "action": "set"})
        == (changes or 0) + 1
    )
    injected_before = _count("/alerts", "500")
    started = asyncio.get_running_loop().time()
    failed = await sink.get("/alerts")
    assert failed.status_code == 500 and failed.json()["title"] == "Injected fault"
    # Counted under its route template, as a served answer, so per-route SLOs see injected errors.
    assert _count("/alerts", "500") == injected_before + 1
    assert asyncio.get_running_loop().time() - started >= 0.05
    assert (await sink.get("/healthz")).status_code == 200  # probes are never faulted
    assert (await sink.delete("/admin/faults", headers=auth)).json() == {"active": False}
    assert (await sink.get("/alerts")).status_code == 200


async def test_invalid_fault_spec_is_a_problem(sink: httpx.AsyncClient):
    auth = {"authorization": f"Bearer {TOKEN}"}
    answer = await sink.put("/admin/faults", json={"error_rate": 2}, headers=auth)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"


def test_faults_expire_by_themselves(monkeypatch: pytest.MonkeyPatch):
    state = FaultState("unit")
    state.set(FaultSpec(error_rate=1.0, ttl_s=1))
    assert state.should_fail()
    clock = state.expires_at
    monkeypatch.setattr("services.common.faults.time.monotonic", lambda: clock + 0.001)
    assert not state.should_fail()
    assert state.describe() == {"active": False}


async def test_no_token_no_admin_endpoint(tmp_path: Path):
    settings = AlertSinkSettings(
        service_name="alert_sink", port=1, history_file=tmp_path / "a.jsonl", webhook_password=SecretStr("x")
    )  # type: ignore[call-arg]
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://sink") as client:
        assert (await client.put("/admin/faults", json={})).status_code == 404
