"""PostgreSQL's and RabbitMQ's own plain-text logs, as the live stack writes them, land parsed into ECS."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aio_pika
import asyncpg
import pytest
from elasticsearch import Elasticsearch

from testbed.context import RenderContext
from testbed.logs import clients, layout

pytestmark = pytest.mark.native


@pytest.fixture
def reader(logs_ctx: RenderContext) -> Iterator[Elasticsearch]:
    with clients.reader(logs_ctx) as es:
        yield es


def _wait_for_docs(
    es: Elasticsearch, query: dict[str, Any], at_least: int, timeout_s: float = 30
) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        hits = es.search(index=layout.shipping().index_pattern, query=query, size=50)["hits"]["hits"]
        if len(hits) >= at_least or time.monotonic() > deadline:
            return [hit["_source"] for hit in hits]
        time.sleep(0.5)


async def _postgres_statements(ctx: RenderContext, marker: str) -> None:
    connection = await asyncpg.connect(
        host="127.0.0.1",
        port=ctx.port("postgresql"),
        user="testbed",
        password=ctx.secrets.postgres_password,
        database="postgres",
    )
    try:
        await connection.execute("SET log_min_duration_statement = 0")
        await connection.execute(f"SELECT '{marker}' AS probe")  # logged with its duration
        with pytest.raises(asyncpg.UndefinedColumnError):
            await connection.execute(f'SELECT "{marker}"')  # no such column: logged as an ERROR
    finally:
        await connection.close()


def test_postgresql_lines_are_parsed_into_ecs(logs_ctx: RenderContext, reader: Elasticsearch) -> None:
    marker = f"logs_probe_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres_statements(logs_ctx, marker))
    query = {
        "bool": {
            "filter": [{"term": {"event.dataset": "postgresql.log"}}],
            "must": [{"match_phrase": {"message": marker}}],
        }
    }
    docs = _wait_for_docs(reader, query, at_least=2)
    duration_docs = [d for d in docs if "duration" in d.get("event", {})]
    error_docs = [d for d in docs if d["log"]["level"] == "error"]
    assert duration_docs, f"no 'duration: ... ms' line parsed among {docs}"
    assert all(0 < d["event"]["duration"] < 60 * 10**9 for d in duration_docs)
    assert marker in duration_docs[0]["postgresql"]["log"]["query"]
    assert error_docs and "does not exist" in error_docs[0]["message"]
    for doc in docs:
        assert doc["service"]["name"] == "postgresql"
        assert doc["process"]["pid"] > 0
        assert "tags" not in doc, doc
        assert abs(time.time() - _epoch(doc["@timestamp"])) < 300  # the line's own time, in UTC


def _epoch(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


async def _rabbitmq_connection(ctx: RenderContext, name: str) -> None:
    connection = await aio_pika.connect(
        host="127.0.0.1",
        port=ctx.port("rabbitmq"),
        login="testbed",
        password=ctx.secrets.rabbitmq_password,
        client_properties={"connection_name": name},
    )
    await connection.close()


def test_rabbitmq_lines_are_parsed_into_ecs(logs_ctx: RenderContext, reader: Elasticsearch) -> None:
    name = f"logs-probe-{uuid.uuid4().hex[:12]}"
    asyncio.run(_rabbitmq_connection(logs_ctx, name))
    query = {
        "bool": {
            "filter": [{"term": {"event.dataset": "rabbitmq.log"}}],
            "must": [{"match_phrase": {"message": name}}],
        }
    }
    docs = _wait_for_docs(reader, query, at_least=1)
    assert docs, "RabbitMQ's line about the probe connection never reached Elasticsearch"
    for doc in docs:
        assert doc["log"]["level"] == "info"
        assert doc["rabbitmq"]["log"]["pid"].startswith("<")
        assert doc["service"]["name"] == "rabbitmq"
        assert "tags" not in doc, doc
        assert abs(time.time() - _epoch(doc["@timestamp"])) < 300


def test_no_rabbitmq_or_postgresql_line_failed_to_parse(reader: Elasticsearch) -> None:
    query = {
        "bool": {
            "filter": [
                {"terms": {"event.dataset": ["postgresql.log", "rabbitmq.log"]}},
                {"term": {"tags": "_parsefailure"}},
            ]
        }
    }
    failures = reader.search(index=layout.shipping().index_pattern, query=query, size=5)["hits"]
    assert failures["total"]["value"] == 0, [h["_source"]["message"][:200] for h in failures["hits"]]
