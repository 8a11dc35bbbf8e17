"""Bad input at the gateway: 4xx problem documents, never a 500 or a stack trace (no dependency needed)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from services.common.logs import ECS_FIELDS
from services.gateway.app import GatewaySettings, create_app


@pytest.fixture
async def gateway() -> AsyncIterator[httpx.AsyncClient]:
    # Dependencies on a closed port: input validation must answer before any call is made.
    settings = GatewaySettings(
        service_name="gateway",
        port=1,
        inventory_url="http://127.0.0.1:9",
        orders_url="http://127.0.0.1:9",
        max_body_bytes=1024,
        dependency_retries=0,
    )  # type: ignore[call-arg]
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client


@pytest.mark.parametrize(
    ("body", "status", "title"),
    [
        (b"{bad json", 400, "Malformed JSON"),
        (b'{"product_id": "mug", "quantity": "two"}', 422, "Invalid request"),
        (b'{"product_id": "mug", "quantity": -1}', 422, "Invalid request"),
        (b'{"product_id": "mug", "quantity": 0}', 422, "Invalid request"),
        (b'{"product_id": "../etc", "quantity": 1}', 422, "Invalid request"),
        (b'{"product_id": "mug", "quantity": 1, "surprise": true}', 422, "Invalid request"),
        (b'{"product_id": "mug", "quantity": 1, "customer_email": "not-an-email"}', 422, "Invalid request"),
        (b"[1, 2]", 422, "Invalid request"),
        (b'{"product_id": "' + b"m" * 2000 + b'", "quantity": 1}', 413, "Payload too large"),
    ],
)
async def test_bad_orders_are_problems(gateway: httpx.AsyncClient, body: bytes, status: int, title: str):
    answer = await gateway.post("/orders", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == status and problem["title"] == title
    assert "Traceback" not in answer.text


async def test_dead_dependency_is_503_not_500(gateway: httpx.AsyncClient):
    answer = await gateway.get("/catalog")
    assert answer.status_code == 503
    assert answer.json()["title"] == "Service unavailable"
    assert answer.headers["retry-after"] == "1"


async def test_invalid_order_id_is_422(gateway: httpx.AsyncClient):
    assert (await gateway.get("/orders/not-a-uuid")).status_code == 422


async def test_client_errors_are_logged_as_warnings_not_errors(
    gateway: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.INFO):
        await gateway.post("/orders", content=b"{bad", headers={"x-request-id": "bad-input-1"})
    access = [
        r
        for r in caplog.records
        if r.name == "shop.access" and r.__dict__[ECS_FIELDS]["http"]["request"]["id"] == "bad-input-1"
    ]
    assert [r.levelno for r in access] == [logging.WARNING]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
