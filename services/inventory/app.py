"""Inventory's HTTP API: browse products, reserve stock for an order (idempotent per order id)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, PostgresDsn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.common.app import ReadinessCheck, model_response, service_app
from services.common.db import open_pool
from services.common.openapi import UUID_PARAMETER, Link, Operation, openapi_document, routes
from services.common.problems import ProblemError
from services.common.request_body import JsonInt, read_model
from services.common.settings import ServiceSettings

VERSION = "1.0.0"
PRODUCT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"

MIGRATIONS = (
    """
    CREATE TABLE products (
        id text PRIMARY KEY,
        name text NOT NULL,
        price_cents integer NOT NULL CHECK (price_cents >= 0),
        stock integer NOT NULL CHECK (stock >= 0)
    );
    CREATE TABLE reservations (
        order_id uuid PRIMARY KEY,
        product_id text NOT NULL REFERENCES products (id),
        quantity integer NOT NULL CHECK (quantity > 0),
        amount_cents bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    """,
    # The demo catalog; stock is large so bounded load tests never run out, except the sold-out item.
    """
    INSERT INTO products (id, name, price_cents, stock) VALUES
        ('espresso-beans', 'Espresso beans 1 kg', 2490, 1000000),
        ('filter-papers', 'Filter papers (100)', 450, 1000000),
        ('grinder', 'Burr grinder', 18900, 1000000),
        ('kettle', 'Gooseneck kettle', 6900, 1000000),
        ('mug', 'Stoneware mug', 1200, 1000000),
        ('scale', 'Brew scale', 3900, 1000000),
        ('espresso-machine', 'Espresso machine', 1299000, 1000000),
        ('sold-out-tin', 'Collector tin (sold out)', 1500, 0)
    ON CONFLICT (id) DO NOTHING;
    """,
)


class InventorySettings(ServiceSettings):
    database_url: PostgresDsn


class Product(BaseModel):
    id: str
    name: str
    price_cents: int
    stock: int


class ProductList(BaseModel):
    products: list[Product]


class ReservationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    product_id: str = Field(pattern=PRODUCT_ID_PATTERN)
    quantity: JsonInt = Field(gt=0, le=1000)


class Reservation(BaseModel):
    order_id: UUID
    product_id: str
    quantity: int
    amount_cents: int


_RELEASE = Link("DELETE /reservations/{order_id}", {"order_id": "$request.path.order_id"})
OPERATIONS = (
    Operation(
        "GET",
        "/products",
        "List the catalog",
        {200: ProductList},
        links={200: [Link("GET /products/{product_id}", {"product_id": "$response.body#/products/0/id"})]},
    ),
    Operation(
        "GET",
        "/products/{product_id}",
        "One product (an id outside the pattern is unknown: 404)",
        {200: Product, 404: None},
        path_schemas={"product_id": {"type": "string", "pattern": PRODUCT_ID_PATTERN}},
    ),
    Operation(
        "PUT",
        "/reservations/{order_id}",
        "Reserve stock for an order (idempotent)",
        {200: Reservation, 201: Reservation, 404: None, 409: None, 422: None},
        request=ReservationRequest,
        path_schemas={"order_id": UUID_PARAMETER},
        links={200: [_RELEASE], 201: [_RELEASE]},
    ),
    Operation(
        "DELETE",
        "/reservations/{order_id}",
        "Release a reservation (idempotent)",
        {204: None, 422: None},
        path_schemas={"order_id": UUID_PARAMETER},
    ),
)


def openapi() -> dict[str, Any]:
    return openapi_document("inventory", VERSION, OPERATIONS)


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


def _order_id(request: Request) -> UUID:
    try:
        return UUID(request.path_params["order_id"])
    except ValueError:
        raise ProblemError(422, "Invalid order id", "order_id must be a UUID") from None


async def list_products(request: Request) -> Response:
    rows = await _pool(request).fetch("SELECT id, name, price_cents, stock FROM products ORDER BY id")
    return model_response(ProductList.model_validate({"products": [dict(r) for r in rows]}))


async def get_product(request: Request) -> Response:
    product_id = request.path_params["product_id"]
    row = await _pool(request).fetchrow(
        "SELECT id, name, price_cents, stock FROM products WHERE id = $1", product_id
    )
    if row is None:
        raise ProblemError(404, "Unknown product", f"no product {product_id!r}")
    return model_response(Product.model_validate(dict(row)))


async def reserve(request: Request) -> Response:
    order_id = _order_id(request)
    wanted = await read_model(request, ReservationRequest, request.app.state.settings.max_body_bytes)
    async with _pool(request).acquire() as connection, connection.transaction():
        existing = await connection.fetchrow(
            "SELECT product_id, quantity, amount_cents FROM reservations WHERE order_id = $1", order_id
        )
        if existing is not None:
            if (existing["product_id"], existing["quantity"]) != (wanted.product_id, wanted.quantity):
                raise ProblemError(409, "Conflicting reservation", f"order {order_id} reserved other goods")
            reservation = Reservation(order_id=order_id, **dict(existing))
            return JSONResponse(reservation.model_dump(mode="json"), status_code=200)
        price = await connection.fetchval(
            "UPDATE products SET stock = stock - $2 WHERE id = $1 AND stock >= $2 RETURNING price_cents",
            wanted.product_id,
            wanted.quantity,
        )
        if price is None:
            known = await connection.fetchval("SELECT 1 FROM products WHERE id = $1", wanted.product_id)
            if not known:
                raise ProblemError(404, "Unknown product", f"no product {wanted.product_id!r}")
            raise ProblemError(409, "Insufficient stock", f"not enough {wanted.product_id!r} in stock")
        amount = price * wanted.quantity
        await connection.execute(
            "INSERT INTO reservations (order_id, product_id, quantity, amount_cents) VALUES ($1, $2, $3, $4)",
            order_id,
            wanted.product_id,
            wanted.quantity,
            amount,
        )
    reservation = Reservation(
        order_id=order_id, product_id=wanted.product_id, quantity=wanted.quantity, amount_cents=amount
    )
    return JSONResponse(reservation.model_dump(mode="json"), status_code=201)


async def release(request: Request) -> Response:
    order_id = _order_id(request)
    async with _pool(request).acquire() as connection, connection.transaction():
        row = await connection.fetchrow(
            "DELETE FROM reservations WHERE order_id = $1 RETURNING product_id, quantity", order_id
        )
        if row is not None:
            await connection.execute(
                "UPDATE products SET stock = stock + $2 WHERE id = $1", row["product_id"], row["quantity"]
            )
    return Response(status_code=204)


def create_app(settings: InventorySettings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = await open_pool(str(settings.database_url), MIGRATIONS)
        try:
            yield
        finally:
            await app.state.pool.close()

    def readiness(app: Starlette) -> dict[str, ReadinessCheck]:
        async def database() -> bool:
            return await app.state.pool.fetchval("SELECT 1") == 1

        return {"postgresql": database}

    handlers = {
        "GET /products": list_products,
        "GET /products/{product_id}": get_product,
        "PUT /reservations/{order_id}": reserve,
        "DELETE /reservations/{order_id}": release,
    }
    return service_app(
        settings, routes(OPERATIONS, handlers), openapi=openapi(), lifespan=lifespan, readiness=readiness
    )
