"""Payments: consumes ``order.placed``, charges once per order, publishes ``payment.completed``/``failed``.

Idempotency: the order id is the primary key of ``payments``; a redelivered message finds the row, is
not charged again and republishes the recorded outcome (orders applies it idempotently). The message is
acked only after the charge is committed and the outcome confirmed by the broker.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
from aio_pika.abc import AbstractIncomingMessage
from pydantic import AmqpDsn, BaseModel, Field, PostgresDsn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.common import messages, metrics
from services.common.amqp import Broker
from services.common.app import ReadinessCheck, service_app
from services.common.db import open_pool
from services.common.faults import FaultState
from services.common.messages import MessageModel, OrderPlacedV1, PaymentCompletedV1, PaymentFailedV1
from services.common.openapi import UUID_PARAMETER, Operation, openapi_document, routes
from services.common.problems import ProblemError
from services.common.settings import ServiceSettings

VERSION = "1.0.0"
logger = logging.getLogger("shop.payments")

MIGRATIONS = (
    """
    CREATE TABLE payments (
        order_id uuid PRIMARY KEY,
        payment_id uuid NOT NULL UNIQUE,
        status text NOT NULL CHECK (status IN ('completed', 'failed')),
        amount_cents bigint NOT NULL,
        reason text,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    """,
)


class PaymentsSettings(ServiceSettings):
    database_url: PostgresDsn
    amqp_url: AmqpDsn
    # Time the (simulated) card processor takes to settle one payment.
    settle_delay_ms: int = Field(default=20, ge=0, le=10_000)
    # Payments above this amount are declined (a deterministic way to exercise payment.failed).
    decline_above_cents: int = Field(default=1_000_000, ge=0)


class Payment(BaseModel):
    order_id: UUID
    payment_id: UUID
    status: Literal["completed", "failed"]
    amount_cents: int
    reason: str | None = None
    created_at: datetime


OPERATIONS = (
    Operation(
        "GET",
        "/payments/{order_id}",
        "The payment of an order",
        {200: Payment, 404: None, 422: None},
        path_schemas={"order_id": UUID_PARAMETER},
    ),
)


def openapi() -> dict[str, Any]:
    return openapi_document("payments", VERSION, OPERATIONS)


class PaymentsService:
    def __init__(self, settings: PaymentsSettings, faults: FaultState) -> None:
        self.settings = settings
        self.faults = faults
        self.broker = Broker(str(settings.amqp_url), settings.service_name)
        self.pool: asyncpg.Pool | None = None
        self.completed = metrics.payments_completed.labels(settings.service_name)
        self.duplicates = metrics.payments_duplicates.labels(settings.service_name)

    @property
    def db(self) -> asyncpg.Pool:
        assert self.pool is not None, "started"
        return self.pool

    def _decide(self, order: OrderPlacedV1) -> str | None:
        """The reason to decline, or None to settle."""
        if order.amount_cents > self.settings.decline_above_cents:
            return "declined: amount over the card limit"
        if self.faults.should_fail():
            return "processor error (injected fault)"
        return None

    async def on_order_placed(self, payload: MessageModel, _message: AbstractIncomingMessage) -> str:
        if not isinstance(payload, OrderPlacedV1):
            raise messages.PoisonMessageError(f"unexpected {type(payload).__name__} on the orders queue")
        existing = await self.db.fetchrow("SELECT * FROM payments WHERE order_id = $1", payload.order_id)
        outcome = "charged"
        if existing is None:
            reason = self._decide(payload)
            await asyncio.sleep(self.settings.settle_delay_ms / 1000)
            inserted = await self.db.fetchrow(
                "INSERT INTO payments (order_id, payment_id, status, amount_cents, reason)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id) DO NOTHING RETURNING *",
                payload.order_id,
                uuid.uuid4(),
                "failed" if reason else "completed",
                payload.amount_cents,
                reason,
            )
            existing = inserted or await self.db.fetchrow(
                "SELECT * FROM payments WHERE order_id = $1", payload.order_id
            )
            if inserted is None:
                outcome = "duplicate"
            elif reason:
                metrics.payments_failed.labels(self.settings.service_name, reason.split(":")[0]).inc()
                logger.warning(
                    "payment for order %s failed: %s",
                    payload.order_id,
                    reason,
                    extra={"event.action": "payment-failed", "order.id": str(payload.order_id)},
                )
            else:
                self.completed.inc()
                logger.info(
                    "payment for order %s completed",
                    payload.order_id,
                    extra={"event.action": "payment-completed", "order.id": str(payload.order_id)},
                )
        else:
            outcome = "duplicate"
        if outcome == "duplicate":
            self.duplicates.inc()
            logger.info(
                "order %s already settled: not charged again",
                payload.order_id,
                extra={"event.action": "payment-duplicate", "order.id": str(payload.order_id)},
            )
        await self._publish_outcome(existing)
        return outcome

    async def _publish_outcome(self, row: asyncpg.Record) -> None:
        now = datetime.now(UTC)
        if row["status"] == "completed":
            event: MessageModel = PaymentCompletedV1(
                order_id=row["order_id"],
                payment_id=row["payment_id"],
                amount_cents=row["amount_cents"],
                settled_at=now,
            )
            key = messages.PAYMENT_COMPLETED
        else:
            event = PaymentFailedV1(order_id=row["order_id"], reason=row["reason"], failed_at=now)
            key = messages.PAYMENT_FAILED
        await self.broker.publish(key, event, message_id=str(row["payment_id"]))

    async def get_payment(self, request: Request) -> Response:
        try:
            order_id = UUID(request.path_params["order_id"])
        except ValueError:
            raise ProblemError(422, "Invalid order id", "order_id must be a UUID") from None
        row = await self.db.fetchrow("SELECT * FROM payments WHERE order_id = $1", order_id)
        if row is None:
            raise ProblemError(404, "Unknown payment", f"no payment for order {order_id}")
        return JSONResponse(Payment(**dict(row)).model_dump(mode="json"))


def create_app(settings: PaymentsSettings) -> Starlette:
    faults = FaultState(settings.service_name)
    service = PaymentsService(settings, faults)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        service.pool = await open_pool(str(settings.database_url), MIGRATIONS)
        await service.broker.connect()
        await service.broker.consume(messages.PAYMENTS_ORDERS, service.on_order_placed)
        try:
            yield
        finally:
            await service.broker.close()
            await service.db.close()

    def readiness(_app: Starlette) -> dict[str, ReadinessCheck]:
        async def database() -> bool:
            return await service.db.fetchval("SELECT 1") == 1

        async def rabbitmq() -> bool:
            return service.broker.connected

        return {"postgresql": database, "rabbitmq": rabbitmq}

    return service_app(
        settings,
        routes(OPERATIONS, {"GET /payments/{order_id}": service.get_payment}),
        openapi=openapi(),
        lifespan=lifespan,
        readiness=readiness,
        faults=faults,
    )
