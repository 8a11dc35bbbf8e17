"""Orders' HTTP API and message handling.

An order is stored first, then published (transactional outbox): if the broker is down the order keeps
``published = false`` and a background loop publishes it later, so an accepted order is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
from aio_pika.abc import AbstractIncomingMessage
from pydantic import AmqpDsn, BaseModel, ConfigDict, Field, PostgresDsn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.common import messages, metrics, tracing
from services.common.amqp import Broker
from services.common.app import ReadinessCheck, service_app
from services.common.db import open_pool
from services.common.messages import MessageModel, OrderPlacedV1, PaymentCompletedV1, PaymentFailedV1
from services.common.openapi import UUID_PARAMETER, Link, Operation, openapi_document, routes
from services.common.problems import ProblemError
from services.common.request_body import JsonInt, read_model
from services.common.settings import ServiceSettings

VERSION = "1.0.0"
logger = logging.getLogger("shop.orders")
OUTBOX_POLL_S = 1.0

MIGRATIONS = (
    """
    CREATE TABLE orders (
        id uuid PRIMARY KEY,
        product_id text NOT NULL,
        quantity integer NOT NULL CHECK (quantity > 0),
        amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
        status text NOT NULL DEFAULT 'placed',
        failure_reason text,
        traceparent text,
        request_id text,
        published boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX orders_unpublished ON orders (created_at) WHERE NOT published;
    """,
)

OrderStatus = Literal["placed", "paid", "payment_failed"]


class OrdersSettings(ServiceSettings):
    database_url: PostgresDsn
    amqp_url: AmqpDsn


class OrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    product_id: str = Field(min_length=1, max_length=64)
    quantity: JsonInt = Field(gt=0, le=1000)
    amount_cents: JsonInt = Field(ge=0)


class Order(BaseModel):
    order_id: UUID
    product_id: str
    quantity: int
    amount_cents: int
    status: OrderStatus
    failure_reason: str | None = None
    created_at: datetime
    updated_at: datetime


_READ_BACK = Link("GET /orders/{order_id}", {"order_id": "$response.body#/order_id"})
OPERATIONS = (
    Operation(
        "PUT",
        "/orders/{order_id}",
        "Store an order and publish order.placed (idempotent)",
        {200: Order, 201: Order, 409: None, 422: None},
        request=OrderRequest,
        path_schemas={"order_id": UUID_PARAMETER},
        links={200: [_READ_BACK], 201: [_READ_BACK]},
    ),
    Operation(
        "GET",
        "/orders/{order_id}",
        "An order and its status",
        {200: Order, 404: None, 422: None},
        path_schemas={"order_id": UUID_PARAMETER},
    ),
)

_ORDER_COLUMNS = (
    "id AS order_id, product_id, quantity, amount_cents, status, failure_reason, created_at, updated_at"
)


def openapi() -> dict[str, Any]:
    return openapi_document("orders", VERSION, OPERATIONS)


def _order_id(request: Request) -> UUID:
    try:
        return UUID(request.path_params["order_id"])
    except ValueError:
        raise ProblemError(422, "Invalid order id", "order_id must be a UUID") from None


class OrdersService:
    def __init__(self, settings: OrdersSettings) -> None:
        self.settings = settings
        self.broker = Broker(str(settings.amqp_url), settings.service_name)
        self.pool: asyncpg.Pool | None = None
        self.placed = metrics.orders_placed.labels(settings.service_name)

    @property
    def db(self) -> asyncpg.Pool:
        assert self.pool is not None, "started"
        return self.pool

    async def put_order(self, request: Request) -> Response:
        order_id = _order_id(request)
        wanted = await read_model(request, OrderRequest, self.settings.max_body_bytes)
        context = tracing.current_or_new()
        inserted = await self.db.fetchval(
            "INSERT INTO orders (id, product_id, quantity, amount_cents, traceparent, request_id)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING true",
            order_id,
            wanted.product_id,
            wanted.quantity,
            wanted.amount_cents,
            context.traceparent,
            context.request_id,
        )
        row = await self.db.fetchrow(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = $1", order_id)
        order = Order(**dict(row))
        if (order.product_id, order.quantity, order.amount_cents) != (
            wanted.product_id,
            wanted.quantity,
            wanted.amount_cents,
        ):
            raise ProblemError(409, "Conflicting order", f"order {order_id} exists with other content")
        if inserted:
            self.placed.inc()
            logger.info(
                "order %s placed", order_id, extra={"event.action": "order-placed", "order.id": str(order_id)}
            )
            try:
                await self._publish_pending(only=order_id)
            except Exception:
                # Stored, so not lost: the outbox loop publishes it once the broker is back.
                logger.warning(
                    "order.placed not published yet", exc_info=True, extra={"order.id": str(order_id)}
                )
        return JSONResponse(order.model_dump(mode="json"), status_code=201 if inserted else 200)

    async def get_order(self, request: Request) -> Response:
        order_id = _order_id(request)
        row = await self.db.fetchrow(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = $1", order_id)
        if row is None:
            raise ProblemError(404, "Unknown order", f"no order {order_id}")
        return JSONResponse(Order(**dict(row)).model_dump(mode="json"))

    async def _publish_pending(self, only: UUID | None = None) -> int:
        """Publish stored orders not yet confirmed by the broker (the outbox). Returns how many."""
        if not self.broker.connected:
            return 0
        published = 0
        async with self.db.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                "SELECT id, product_id, quantity, amount_cents, created_at, traceparent, request_id"
                " FROM orders"
                " WHERE NOT published AND ($1::uuid IS NULL OR id = $1)"
                " ORDER BY created_at LIMIT 100 FOR UPDATE SKIP LOCKED",
                only,
            )
            for row in rows:
                event = OrderPlacedV1(
                    order_id=row["id"],
                    product_id=row["product_id"],
                    quantity=row["quantity"],
                    amount_cents=row["amount_cents"],
                    placed_at=row["created_at"],
                )
                # Publish in the order's own trace, even when the outbox loop sends it later.
                with tracing.activate(tracing.from_headers(row["traceparent"], row["request_id"])):
                    await self.broker.publish(messages.ORDER_PLACED, event, message_id=str(row["id"]))
                    logger.info(
                        "order.placed published",
                        extra={"event.action": "order-published", "order.id": str(row["id"])},
                    )
                await connection.execute("UPDATE orders SET published = true WHERE id = $1", row["id"])
                published += 1
        return published

    async def outbox_loop(self) -> None:
        while True:
            try:
                await self._publish_pending()
            except Exception:
                logger.warning("outbox publish failed; retrying", exc_info=True)
            await asyncio.sleep(OUTBOX_POLL_S)

    async def on_payment_result(self, payload: MessageModel, _message: AbstractIncomingMessage) -> str:
        if isinstance(payload, PaymentCompletedV1):
            status, reason = "paid", None
        elif isinstance(payload, PaymentFailedV1):
            status, reason = "payment_failed", payload.reason
        else:
            raise messages.PoisonMessageError(
                f"unexpected {type(payload).__name__} on the payment results queue"
            )
        updated = await self.db.fetchval(
            "UPDATE orders SET status = $2, failure_reason = $3, updated_at = $4"
            " WHERE id = $1 AND status = 'placed' RETURNING true",
            payload.order_id,
            status,
            reason,
            datetime.now(UTC),
        )
        if not updated:
            return "duplicate"
        logger.info(
            "order %s %s",
            payload.order_id,
            status,
            extra={"event.action": f"order-{status.replace('_', '-')}", "order.id": str(payload.order_id)},
        )
        return "applied"


def create_app(settings: OrdersSettings) -> Starlette:
    service = OrdersService(settings)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        service.pool = await open_pool(str(settings.database_url), MIGRATIONS)
        await service.broker.connect()
        await service.broker.consume(messages.ORDERS_PAYMENT_RESULTS, service.on_payment_result)
        outbox = asyncio.create_task(service.outbox_loop())
        try:
            yield
        finally:
            outbox.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await outbox
            await service.broker.close()
            await service.db.close()

    def readiness(_app: Starlette) -> dict[str, ReadinessCheck]:
        async def database() -> bool:
            return await service.db.fetchval("SELECT 1") == 1

        async def rabbitmq() -> bool:
            return service.broker.connected

        return {"postgresql": database, "rabbitmq": rabbitmq}

    handlers = {"PUT /orders/{order_id}": service.put_order, "GET /orders/{order_id}": service.get_order}
    return service_app(
        settings, routes(OPERATIONS, handlers), openapi=openapi(), lifespan=lifespan, readiness=readiness
    )
