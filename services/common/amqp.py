"""RabbitMQ (aio-pika): declared topology, confirmed publishing and instrumented consumers.

Publishing carries the trace context in the message headers. Consumers ack manually: only after the
handler's work is committed. Poison messages (invalid payloads, or handlers failing again and again) are
rejected into the queue's dead-letter queue; other failures are requeued. On shutdown a consumer stops
taking messages and waits for the ones it is handling, so none is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection

from services.common import messages, metrics, tracing
from services.common.messages import MessageModel, PoisonMessageError, QueueSpec

logger = logging.getLogger("shop.amqp")
Handler = Callable[[MessageModel, AbstractIncomingMessage], Awaitable[str]]
# A message whose handler fails this many times in a row is treated as poison.
MAX_HANDLER_FAILURES = 5
BACKLOG_POLL_S = 5.0


class Broker:
    def __init__(self, url: str, service: str, prefetch: int = 16) -> None:
        self.url = url
        self.service = service
        self.prefetch = prefetch
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consumers: list[_Consumer] = []

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self.url, client_properties={"connection_name": self.service}
        )
        self._channel = await self._connection.channel(publisher_confirms=True)
        await self._channel.set_qos(prefetch_count=self.prefetch)
        self._exchange = await declare_topology(self._channel)

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def publish(self, routing_key: str, payload: MessageModel, message_id: str) -> None:
        """Publish and wait for the broker's confirm (raises if the broker refuses)."""
        assert self._exchange is not None, "connect() first"
        context = tracing.current_or_new()
        message = aio_pika.Message(
            body=payload.model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            type=messages.message_type(routing_key),
            timestamp=datetime.now(UTC),
            app_id=self.service,
            headers=dict(context.headers()),
        )
        await self._exchange.publish(message, routing_key=routing_key)
        metrics.queue_messages_published.labels(self.service, routing_key).inc()

    async def consume(self, spec: QueueSpec, handler: Handler) -> None:
        assert self._channel is not None, "connect() first"
        queue = await self._channel.get_queue(spec.name)
        consumer = _Consumer(self.service, spec, handler, queue, self._channel)
        await consumer.start()
        self._consumers.append(consumer)

    async def close(self) -> None:
        for consumer in self._consumers:
            await consumer.stop()
        if self._connection is not None:
            await self._connection.close()


async def declare_topology(channel: AbstractChannel) -> AbstractExchange:
    """The exchanges, queues and dead-letter queues (idempotent: every service declares them)."""
    exchange = await channel.declare_exchange(messages.EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    dead_letters = await channel.declare_exchange(
        messages.DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    for spec in messages.QUEUES:
        queue = await channel.declare_queue(
            spec.name, durable=True, arguments={"x-dead-letter-exchange": messages.DEAD_LETTER_EXCHANGE}
        )
        dead_letter_queue = await channel.declare_queue(spec.dead_letter_name, durable=True)
        for key in spec.routing_keys:
            await queue.bind(exchange, routing_key=key)
            await dead_letter_queue.bind(dead_letters, routing_key=key)
    return exchange


class _Consumer:
    def __init__(
        self,
        service: str,
        spec: QueueSpec,
        handler: Handler,
        queue: aio_pika.abc.AbstractQueue,
        channel: AbstractChannel,
    ) -> None:
        self.service = service
        self.spec = spec
        self.handler = handler
        self.queue = queue
        self.channel = channel
        self._tag: str | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._failures: Tally[str] = Tally()
        self._backlog_task: asyncio.Task[None] | None = None
        self._lag = metrics.queue_consumer_lag.labels(service, spec.name)

    async def start(self) -> None:
        self._tag = await self.queue.consume(self._on_message)
        self._backlog_task = asyncio.create_task(self._poll_backlog())

    async def stop(self) -> None:
        if self._tag is not None:
            await self.queue.cancel(self._tag)  # no new deliveries; unacked ones return to the queue
            self._tag = None
        await self._idle.wait()
        if self._backlog_task is not None:
            self._backlog_task.cancel()

    async def _poll_backlog(self) -> None:
        gauge = metrics.queue_messages_ready.labels(self.service, self.spec.name)
        while True:
            try:
                declared = await self.channel.declare_queue(self.spec.name, passive=True)
                gauge.set(declared.declaration_result.message_count or 0)
            except Exception:  # the robust connection reconnects; try again later
                logger.debug("queue backlog poll failed", exc_info=True)
            await asyncio.sleep(BACKLOG_POLL_S)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._in_flight += 1
        self._idle.clear()
        headers = {k: v for k, v in (message.headers or {}).items() if isinstance(v, str)}
        context = tracing.from_headers(headers.get(tracing.TRACEPARENT), headers.get(tracing.REQUEST_ID))
        try:
            with tracing.activate(context):
                await self._handle(message)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        if message.timestamp is not None:
            sent = message.timestamp if message.timestamp.tzinfo else message.timestamp.replace(tzinfo=UTC)
            self._lag.observe(max(0.0, time.time() - sent.timestamp()))
        key = message.message_id or str(message.delivery_tag)
        extra: dict[str, object] = {
            "event.action": "message-consumed",
            "amqp.routing_key": message.routing_key,
            "amqp.message_id": message.message_id,
            "amqp.redelivered": message.redelivered,
            "amqp.queue": self.spec.name,
        }
        try:
            payload = messages.parse(message.routing_key or "", message.body)
            outcome = await self.handler(payload, message)
        except PoisonMessageError as error:
            await self._dead_letter(message, str(error), extra)
            return
        except Exception as error:  # any handler failure: requeue, up to a bound
            self._failures[key] += 1
            if self._failures[key] >= MAX_HANDLER_FAILURES:
                del self._failures[key]
                await self._dead_letter(
                    message, f"handler failed {MAX_HANDLER_FAILURES} times: {error}", extra
                )
                return
            logger.warning("message handling failed, requeued: %s", error, exc_info=True, extra=extra)
            await asyncio.sleep(0.5)  # no hot loop while a dependency is down
            await message.nack(requeue=True)
            metrics.queue_messages_consumed.labels(self.service, self.spec.name, "requeued").inc()
            return
        self._failures.pop(key, None)
        await message.ack()
        metrics.queue_messages_consumed.labels(self.service, self.spec.name, outcome).inc()
        logger.info("message %s handled: %s", message.routing_key, outcome, extra=extra)

    async def _dead_letter(
        self, message: AbstractIncomingMessage, reason: str, extra: dict[str, object]
    ) -> None:
        logger.error("poison message dead-lettered: %s", reason, extra={**extra, "event.outcome": "failure"})
        await message.reject(requeue=False)
        metrics.queue_messages_consumed.labels(self.service, self.spec.name, "dead_lettered").inc()
