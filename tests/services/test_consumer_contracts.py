"""Consumer-side contracts: the gateway's own expectations (services/gateway/contracts.py) against the
answers inventory and orders really serve, request for request as the gateway sends them.

Nothing here imports a provider's model: a provider renaming, dropping or retyping a field the gateway
reads, or changing a status or content type the gateway relies on, fails this test.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from services.gateway.contracts import (
    Order,
    OrderRequest,
    Problem,
    Product,
    ProductList,
    Reservation,
    ReservationRequest,
)
from testbed.context import RenderContext
from tests.services.shop_client import url

pytestmark = pytest.mark.native


def _problem(answer: httpx.Response, status: int) -> Problem:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    return Problem.model_validate_json(answer.content)


def test_inventory_serves_what_the_gateway_expects(native_stack: RenderContext):
    with httpx.Client(base_url=url(native_stack, "inventory"), timeout=10) as inventory:
        assert inventory.get("/healthz").status_code == 200  # the gateway's readiness probe
        catalog = inventory.get("/products")
        assert catalog.status_code == 200
        products = ProductList.model_validate_json(catalog.content).products
        assert "mug" in {p.id for p in products}
        mug = inventory.get("/products/mug")
        assert mug.status_code == 200
        assert Product.model_validate_json(mug.content).price_cents == 1200
        assert _problem(inventory.get("/products/no-such-thing"), 404).title

        order_id = uuid.uuid4()
        wanted = ReservationRequest(product_id="mug", quantity=2).model_dump()
        created = inventory.put(f"/reservations/{order_id}", json=wanted)
        assert created.status_code == 201, created.text
        reservation = Reservation.model_validate_json(created.content)
        assert (reservation.order_id, reservation.amount_cents) == (order_id, 2400)
        replayed = inventory.put(f"/reservations/{order_id}", json=wanted)  # the gateway's retry
        assert replayed.status_code == 200
        assert Reservation.model_validate_json(replayed.content).amount_cents == 2400
        assert inventory.delete(f"/reservations/{order_id}").status_code == 204  # the compensation
        assert inventory.delete(f"/reservations/{order_id}").status_code == 204  # idempotent

        sold_out = ReservationRequest(product_id="sold-out-tin", quantity=1).model_dump()
        assert _problem(inventory.put(f"/reservations/{uuid.uuid4()}", json=sold_out), 409).title
        unknown = ReservationRequest(product_id="no-such-thing", quantity=1).model_dump()
        assert _problem(inventory.put(f"/reservations/{uuid.uuid4()}", json=unknown), 404).title


def test_orders_serves_what_the_gateway_expects(native_stack: RenderContext):
    with httpx.Client(base_url=url(native_stack, "orders"), timeout=10) as orders:
        assert orders.get("/healthz").status_code == 200
        order_id = uuid.uuid4()
        wanted = OrderRequest(product_id="mug", quantity=1, amount_cents=1200).model_dump()
        stored = orders.put(f"/orders/{order_id}", json=wanted)
        assert stored.status_code == 201, stored.text
        order = Order.model_validate_json(stored.content)
        assert (order.order_id, order.status, order.amount_cents) == (order_id, "placed", 1200)
        replayed = orders.put(f"/orders/{order_id}", json=wanted)
        assert replayed.status_code == 200
        assert Order.model_validate_json(replayed.content).order_id == order_id
        read = orders.get(f"/orders/{order_id}")
        assert read.status_code == 200
        assert Order.model_validate_json(read.content).product_id == "mug"
        conflicting = {**wanted, "quantity": 2}
        assert _problem(orders.put(f"/orders/{order_id}", json=conflicting), 409).title
        assert _problem(orders.get(f"/orders/{uuid.uuid4()}"), 404).title
