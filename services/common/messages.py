"""Message contracts between the services: every payload schema, versioned, in this one place.

A message's AMQP ``type`` property is ``<routing key>.v<version>``; a consumer that meets a payload it
cannot validate treats it as poison (dead-lettered, never retried forever).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

EXCHANGE = "shop"
DEAD_LETTER_EXCHANGE = "shop.dead-letter"

ORDER_PLACED = "order.placed"
PAYMENT_COMPLETED = "payment.completed"
PAYMENT_FAILED = "payment.failed"


class MessageModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderPlacedV1(MessageModel):
    """Published by orders once an order is stored; payments settles it."""

    schema_version: Literal[1] = 1
    order_id: UUID
    product_id: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0, le=1000)
    amount_cents: int = Field(ge=0)
    currency: Literal["EUR"] = "EUR"
    placed_at: datetime


class PaymentCompletedV1(MessageModel):
    schema_version: Literal[1] = 1
    order_id: UUID
    payment_id: UUID
    amount_cents: int = Field(ge=0)
    settled_at: datetime


class PaymentFailedV1(MessageModel):
    schema_version: Literal[1] = 1
    order_id: UUID
    reason: str = Field(min_length=1, max_length=200)
    failed_at: datetime


SCHEMAS: dict[str, type[MessageModel]] = {
    ORDER_PLACED: OrderPlacedV1,
    PAYMENT_COMPLETED: PaymentCompletedV1,
    PAYMENT_FAILED: PaymentFailedV1,
}


class PoisonMessageError(Exception):
    """A message no retry can fix (unknown type, invalid payload): it goes to the dead-letter queue."""


def message_type(routing_key: str) -> str:
    model = SCHEMAS[routing_key]
    version = model.model_fields["schema_version"].default
    return f"{routing_key}.v{version}"


def parse(routing_key: str, body: bytes) -> MessageModel:
    model = SCHEMAS.get(routing_key)
    if model is None:
        raise PoisonMessageError(f"no schema for routing key {routing_key!r}")
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise PoisonMessageError(f"{routing_key}: {where}: {first['msg']}") from None


class QueueSpec(BaseModel):
    """A consumer's durable queue, its bindings and its dead-letter queue."""

    name: str
    routing_keys: tuple[str, ...]

    @property
    def dead_letter_name(self) -> str:
        return f"{self.name}.dead-letter"


PAYMENTS_ORDERS = QueueSpec(name="payments.order-placed", routing_keys=(ORDER_PLACED,))
ORDERS_PAYMENT_RESULTS = QueueSpec(
    name="orders.payment-results", routing_keys=(PAYMENT_COMPLETED, PAYMENT_FAILED)
)
QUEUES = (PAYMENTS_ORDERS, ORDERS_PAYMENT_RESULTS)
