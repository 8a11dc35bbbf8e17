"""The public API: browse the catalog, place an order, follow its status.

Placing an order reserves stock (inventory) then stores the order (orders); both calls are idempotent
PUTs keyed by the order id, so they are retried safely. The client may send ``Idempotency-Key`` to make
its own retries safe too (the order id is derived from it).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.common.app import ReadinessCheck, model_response, service_app
from services.common.client import DependencyClient, DependencyResponse, DependencyUnavailableError
from services.common.faults import FaultState
from services.common.openapi import UUID_PARAMETER, Link, Operation, openapi_document, routes
from services.common.problems import ProblemError, problem_response
from services.common.request_body import JsonInt, read_model
from services.common.settings import ServiceSettings
from services.gateway.contracts import (
    PRODUCT_ID_PATTERN,
    Order,
    OrderRequest,
    Product,
    ProductList,
    Reservation,
    ReservationRequest,
)

VERSION = "1.0.0"
logger = logging.getLogger("shop.gateway")
# Namespace turning a client's Idempotency-Key into a stable order id.
_ORDER_ID_NAMESPACE = UUID("5b0c8a53-3f0e-4a8b-9c55-2d0e4f1f6a10")


class GatewaySettings(ServiceSettings):
    inventory_url: HttpUrl
    orders_url: HttpUrl
    dependency_timeout_s: float = Field(default=2.0, gt=0, le=30)
    dependency_retries: int = Field(default=2, ge=0, le=5)


EMAIL_PATTERN = r"^[!-?A-~]+@[!-?A-~]+\.[!-?A-~]+$"  # "@" (0x40) is the one printable left out


class PlaceOrder(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    product_id: str = Field(pattern=PRODUCT_ID_PATTERN)
    quantity: JsonInt = Field(gt=0, le=100)
    # Accepted and logged (redacted) to prove sensitive data never reaches the logs in clear.
    # Printable ASCII: `\s` is not the same set in ECMA (the schema) and Rust (pydantic) regexes.
    customer_email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)


class OrderAccepted(BaseModel):
    order_id: UUID
    status: str
    amount_cents: int
    status_url: str


OPERATIONS = (
    Operation(
        "GET",
        "/catalog",
        "Browse the catalog",
        {200: ProductList, 503: None},
        links={200: [Link("GET /catalog/{product_id}", {"product_id": "$response.body#/products/0/id"})]},
    ),
    Operation(
        "GET",
        "/catalog/{product_id}",
        "One product (an id outside the pattern is unknown: 404)",
        {200: Product, 404: None, 503: None},
        path_schemas={"product_id": {"type": "string", "pattern": PRODUCT_ID_PATTERN}},
    ),
    Operation(
        "POST",
        "/orders",
        "Place an order",
        {202: OrderAccepted, 400: None, 404: None, 409: None, 413: None, 422: None, 503: None},
        request=PlaceOrder,
        links={202: [Link("GET /orders/{order_id}", {"order_id": "$response.body#/order_id"})]},
    ),
    Operation(
        "GET",
        "/orders/{order_id}",
        "An order's status",
        {200: Order, 404: None, 422: None, 503: None},
        path_schemas={"order_id": UUID_PARAMETER},
    ),
)


def openapi() -> dict[str, Any]:
    return openapi_document("gateway", VERSION, OPERATIONS)


class Gateway:
    def __init__(self, settings: GatewaySettings, faults: FaultState) -> None:
        self.settings = settings

        def client(target: str, url: HttpUrl) -> DependencyClient:
            return DependencyClient(
                settings.service_name,
                target,
                str(url),
                faults,
                timeout_s=settings.dependency_timeout_s,
                max_retries=settings.dependency_retries,
            )

        self.inventory = client("inventory", settings.inventory_url)
        self.orders = client("orders", settings.orders_url)

    async def aclose(self) -> None:
        await self.inventory.aclose()
        await self.orders.aclose()

    async def catalog(self, _request: Request) -> Response:
        answer = await self.inventory.request("GET", "/products")
        return model_response(_expect(answer, ProductList))

    async def product(self, request: Request) -> Response:
        product_id = request.path_params["product_id"]
        if not re.fullmatch(PRODUCT_ID_PATTERN, product_id):
            # Never forwarded: such an id cannot exist, and would not be a safe path segment upstream.
            raise ProblemError(404, "Unknown product", f"no product {product_id!r}")
        answer = await self.inventory.request("GET", f"/products/{product_id}")
        return model_response(_expect(answer, Product))

    async def place_order(self, request: Request) -> Response:
        wanted = await read_model(request, PlaceOrder, self.settings.max_body_bytes)
        key = request.headers.get("idempotency-key")
        order_id = uuid.uuid5(_ORDER_ID_NAMESPACE, key) if key else uuid.uuid4()
        logger.info(
            "placing order %s for %s",
            order_id,
            wanted.customer_email or "anonymous customer",
            extra={"event.action": "order-requested", "order.id": str(order_id)},
        )
        reservation_request = ReservationRequest(product_id=wanted.product_id, quantity=wanted.quantity)
        reserved = await self.inventory.request(
            "PUT", f"/reservations/{order_id}", json=reservation_request.model_dump()
        )
        reservation = _expect(reserved, Reservation)
        order_request = OrderRequest(
            product_id=wanted.product_id, quantity=wanted.quantity, amount_cents=reservation.amount_cents
        )
        try:
            stored = await self.orders.request("PUT", f"/orders/{order_id}", json=order_request.model_dump())
            order = _expect(stored, Order)
        except (DependencyUnavailableError, ProblemError):
            # Give the stock back; the client may retry with the same Idempotency-Key.
            try:
                await self.inventory.request("DELETE", f"/reservations/{order_id}")
            except DependencyUnavailableError:
                logger.warning("reservation %s not released", order_id, extra={"order.id": str(order_id)})
            raise
        accepted = OrderAccepted(
            order_id=order.order_id,
            status=order.status,
            amount_cents=order.amount_cents,
            status_url=f"/orders/{order.order_id}",
        )
        return JSONResponse(
            accepted.model_dump(mode="json"), status_code=202, headers={"location": accepted.status_url}
        )

    async def order_status(self, request: Request) -> Response:
        try:
            order_id = UUID(request.path_params["order_id"])
        except ValueError:
            raise ProblemError(422, "Invalid order id", "order_id must be a UUID") from None
        answer = await self.orders.request("GET", f"/orders/{order_id}")
        return JSONResponse(_expect(answer, Order).model_dump(mode="json"))


def _expect[M: BaseModel](answer: DependencyResponse, model: type[M]) -> M:
    """The dependency's answer as ``model``; its 4xx problems are passed on to the client."""
    if answer.status_code >= 400:
        try:
            body = answer.json()
        except ValueError:
            body = {}
        raise ProblemError(
            answer.status_code,
            str(body.get("title", "Dependency refused the request")),
            str(body.get("detail", "")),
        )
    try:
        return model.model_validate_json(answer.content)
    except ValueError:
        raise ProblemError(502, "Bad gateway", "a dependency answered outside its contract") from None


async def dependency_unavailable(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DependencyUnavailableError)
    logger.error(
        "dependency %s unavailable: %s",
        exc.target,
        exc.reason,
        extra={"event.action": "dependency-unavailable", "destination.service": exc.target},
    )
    return problem_response(
        503,
        "Service unavailable",
        f"{exc.target} is unavailable ({exc.reason})",
        headers={"retry-after": "1"},
    )


def create_app(settings: GatewaySettings) -> Starlette:
    faults = FaultState(settings.service_name)
    gateway = Gateway(settings, faults)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await gateway.aclose()

    def readiness(_app: Starlette) -> dict[str, ReadinessCheck]:
        async def reachable(client: DependencyClient) -> bool:
            answer = await client.request("GET", "/healthz")
            return answer.status_code == 200

        async def inventory() -> bool:
            return await reachable(gateway.inventory)

        async def orders() -> bool:
            return await reachable(gateway.orders)

        return {"inventory": inventory, "orders": orders}

    handlers = {
        "GET /catalog": gateway.catalog,
        "GET /catalog/{product_id}": gateway.product,
        "POST /orders": gateway.place_order,
        "GET /orders/{order_id}": gateway.order_status,
    }
    app = service_app(
        settings,
        routes(OPERATIONS, handlers),
        openapi=openapi(),
        lifespan=lifespan,
        readiness=readiness,
        faults=faults,
    )
    app.add_exception_handler(DependencyUnavailableError, dependency_unavailable)
    return app
