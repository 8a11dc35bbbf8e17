"""Interfaces: committed OpenAPI documents are current and served; consumers match producers' schemas."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

import httpx
import jsonschema
import pytest

from services import openapi as documents
from services.common import messages
from services.common.messages import OrderPlacedV1, PaymentCompletedV1, PaymentFailedV1, PoisonMessageError
from services.gateway.app import GatewaySettings
from services.gateway.app import create_app as create_gateway
from services.inventory.app import ReservationRequest
from services.orders.app import OrderRequest


@pytest.mark.parametrize("service", sorted(documents.DOCUMENTS))
def test_committed_openapi_is_current(service: str):
    committed = documents.committed_path(service).read_text()
    assert committed == documents.render(service), "run: .venv/bin/python -m services.openapi"


async def test_served_openapi_equals_committed():
    settings = GatewaySettings(
        service_name="gateway", port=1, inventory_url="http://127.0.0.1:9", orders_url="http://127.0.0.1:9"
    )  # type: ignore[call-arg]
    transport = httpx.ASGITransport(app=create_gateway(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        served = (await client.get("/openapi.json")).json()
    assert served == json.loads(documents.committed_path("gateway").read_text())


def _request_schema(service: str, method: str, path: str) -> dict:
    document = json.loads(documents.committed_path(service).read_text())
    ref = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    name = ref.rsplit("/", 1)[1]
    return {**document["components"]["schemas"][name], "$defs": document["components"]["schemas"]}


@pytest.mark.parametrize(
    ("service", "path", "body"),
    [
        ("inventory", "/reservations/{order_id}", ReservationRequest(product_id="mug", quantity=2)),
        ("orders", "/orders/{order_id}", OrderRequest(product_id="mug", quantity=2, amount_cents=2400)),
    ],
)
def test_gateway_requests_match_the_producers_committed_schema(service: str, path: str, body):
    schema = _request_schema(service, "put", path)
    jsonschema.validate(body.model_dump(mode="json"), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**body.model_dump(mode="json"), "quantity": -1}, schema)


@pytest.mark.parametrize(
    ("routing_key", "produced"),
    [
        (
            messages.ORDER_PLACED,
            OrderPlacedV1(
                order_id=uuid4(), product_id="mug", quantity=1, amount_cents=1200, placed_at=datetime.now(UTC)
            ),
        ),
        (
            messages.PAYMENT_COMPLETED,
            PaymentCompletedV1(
                order_id=uuid4(), payment_id=uuid4(), amount_cents=1, settled_at=datetime.now(UTC)
            ),
        ),
        (
            messages.PAYMENT_FAILED,
            PaymentFailedV1(order_id=uuid4(), reason="declined", failed_at=datetime.now(UTC)),
        ),
    ],
)
def test_consumers_accept_what_producers_publish(routing_key: str, produced: messages.MessageModel):
    wire = produced.model_dump_json().encode()
    assert messages.parse(routing_key, wire) == produced
    assert messages.message_type(routing_key) == f"{routing_key}.v1"


@pytest.mark.parametrize(
    ("routing_key", "body"),
    [
        (messages.ORDER_PLACED, b"not json"),
        (messages.ORDER_PLACED, b'{"schema_version": 2}'),
        (
            messages.ORDER_PLACED,
            b'{"order_id": "x", "product_id": "mug", "quantity": 1, "amount_cents": 1,'
            b' "placed_at": "2026-01-01T00:00:00Z"}',
        ),
        ("order.unknown", b"{}"),
    ],
)
def test_poison_is_recognised(routing_key: str, body: bytes):
    with pytest.raises(PoisonMessageError):
        messages.parse(routing_key, body)
