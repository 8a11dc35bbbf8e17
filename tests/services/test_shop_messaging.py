"""The queue between orders and payments on the live RabbitMQ and PostgreSQL: DLQ, idempotency, crashes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import aio_pika
import asyncpg
import pytest

from services.common import messages
from services.common.messages import OrderPlacedV1
from testbed.context import RenderContext
from testbed.native.control import NativeStack
from tests.services.shop_client import metric, order, place_order, wait_final, wait_for

pytestmark = pytest.mark.native


def _amqp_url(ctx: RenderContext) -> str:
    return f"amqp://testbed:{ctx.secrets.rabbitmq_password}@{ctx.address('rabbitmq')}/"


async def _publish(ctx: RenderContext, routing_key: str, body: bytes, message_id: str) -> None:
    connection = await aio_pika.connect(_amqp_url(ctx))
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(messages.EXCHANGE)
        await exchange.publish(
            aio_pika.Message(
                body=body,
                message_id=message_id,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=routing_key,
        )


async def _take_dead_letter(ctx: RenderContext, message_id: str, timeout_s: float = 15) -> bytes:
    """Wait for ``message_id`` in the payments dead-letter queue and remove it (leaving others)."""
    connection = await aio_pika.connect(_amqp_url(ctx))
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(messages.PAYMENTS_ORDERS.dead_letter_name)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            message = await queue.get(fail=False, no_ack=False)
            if message is None:
                await asyncio.sleep(0.2)
                continue
            if message.message_id == message_id:
                await message.ack()
                return message.body
            await message.nack(requeue=True)
            await asyncio.sleep(0.05)
    raise AssertionError(f"{message_id} never reached {messages.PAYMENTS_ORDERS.dead_letter_name}")


async def _payment_rows(ctx: RenderContext, order_id: str) -> int:
    dsn = f"postgresql://testbed:{ctx.secrets.postgres_password}@{ctx.address('postgresql')}/payments"
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(
            "SELECT count(*) FROM payments WHERE order_id = $1", uuid.UUID(order_id)
        )
    finally:
        await connection.close()


async def test_a_poison_message_lands_in_the_dead_letter_queue(native_stack: RenderContext):
    dead_before = metric(
        native_stack, "payments", "queue_messages_consumed_total", {"outcome": "dead_lettered"}
    )
    message_id = f"poison-{uuid.uuid4()}"
    body = b'{"schema_version": 1, "order_id": "not-a-uuid", "quantity": -1}'
    await _publish(native_stack, messages.ORDER_PLACED, body, message_id)
    assert await _take_dead_letter(native_stack, message_id) == body
    assert (
        metric(native_stack, "payments", "queue_messages_consumed_total", {"outcome": "dead_lettered"})
        >= dead_before + 1
    )
    # The consumer survived the poison: orders still settle.
    assert wait_final(native_stack, place_order(native_stack)["order_id"])["status"] == "paid"


async def test_a_redelivered_order_is_not_charged_twice(native_stack: RenderContext):
    accepted = place_order(native_stack, "scale", 1)
    settled = wait_final(native_stack, accepted["order_id"])
    duplicates_before = metric(native_stack, "payments", "payments_duplicate_messages_total")
    replay = OrderPlacedV1(
        order_id=uuid.UUID(accepted["order_id"]),
        product_id="scale",
        quantity=1,
        amount_cents=settled["amount_cents"],
        placed_at=datetime.now(UTC),
    )
    for _ in range(2):
        await _publish(
            native_stack, messages.ORDER_PLACED, replay.model_dump_json().encode(), accepted["order_id"]
        )
    wait_for(
        lambda: (
            metric(native_stack, "payments", "payments_duplicate_messages_total") >= duplicates_before + 2
        ),
        15,
        "payments to see both redeliveries",
    )
    assert await _payment_rows(native_stack, accepted["order_id"]) == 1
    assert order(native_stack, accepted["order_id"])["status"] == "paid"


@pytest.mark.slow
async def test_killing_payments_mid_flow_loses_no_order(native_stack: RenderContext):
    stack = NativeStack()
    before_kill = [place_order(native_stack, "mug", 1)["order_id"] for _ in range(5)]
    stack.kill("payments")  # SIGKILL: unacked deliveries go back to the queue
    try:
        while_down = [place_order(native_stack, "mug", 1)["order_id"] for _ in range(5)]
        for order_id in while_down:
            assert order(native_stack, order_id)["status"] == "placed"
    finally:
        stack.start("payments")  # waits until ready
    for order_id in before_kill + while_down:
        assert wait_final(native_stack, order_id, timeout_s=30)["status"] == "paid"
        assert await _payment_rows(native_stack, order_id) == 1
