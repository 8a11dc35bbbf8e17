"""Known traffic in, exact counts out: what the pipeline proofs and the bench are made of.

Requests carry an ``x-request-id`` of ``<run>-<n>``, which every service logs as ``transaction.id``, so
a run's documents are found exactly (no sampling, no time window guesses).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from elasticsearch import Elasticsearch

from testbed.context import RenderContext
from testbed.logs import layout

ACCESS_DATASET = "shop.gateway.access"


def run_query(run_id: str, dataset: str | None = ACCESS_DATASET) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [{"prefix": {"transaction.id": f"{run_id}-"}}]
    if dataset:
        filters.append({"term": {"event.dataset": dataset}})
    return {"bool": {"filter": filters}}


def count(es: Elasticsearch, query: dict[str, Any]) -> int:
    return int(es.count(index=layout.shipping().index_pattern, query=query)["count"])


def wait_for_count(es: Elasticsearch, query: dict[str, Any], expected: int, timeout_s: float) -> int:
    """Poll until ``expected`` documents match (or more: a duplicate shows at once), or the timeout."""
    deadline = time.monotonic() + timeout_s
    seen = count(es, query)
    while seen < expected and time.monotonic() < deadline:
        time.sleep(1.0)
        seen = count(es, query)
    return seen


def values(es: Elasticsearch, query: dict[str, Any], field_name: str) -> dict[str, int]:
    """Every distinct value of ``field_name`` among matching documents, with its document count."""
    found: dict[str, int] = {}
    after: dict[str, Any] | None = None
    while True:
        composite: dict[str, Any] = {"size": 1000, "sources": [{"v": {"terms": {"field": field_name}}}]}
        if after:
            composite["after"] = after
        response = es.search(
            index=layout.shipping().index_pattern, query=query, size=0, aggs={"all": {"composite": composite}}
        )
        aggregation = response["aggregations"]["all"]
        for bucket in aggregation["buckets"]:
            found[str(bucket["key"]["v"])] = int(bucket["doc_count"])
        after = aggregation.get("after_key")
        if not aggregation["buckets"] or after is None:
            return found


@dataclass
class DriveResult:
    """Requests that got an HTTP answer (each writes exactly one gateway access-log line)."""

    answered: list[str] = field(default_factory=list)
    # No answer (timeout, reset): the gateway may or may not have served and logged these.
    unanswered: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)


def request_ids(run_id: str, n: int) -> Iterator[str]:
    return (f"{run_id}-{i}" for i in range(n))


async def drive_gateway(
    ctx: RenderContext,
    run_id: str,
    n: int,
    rate_per_s: float,
    concurrency: int = 16,
    path: str = "/catalog",
) -> DriveResult:
    """Send ``n`` GETs to the gateway (127.0.0.1 only) at no more than ``rate_per_s``."""
    result = DriveResult()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for request_id in request_ids(run_id, n):
        queue.put_nowait(request_id)
    start = time.monotonic()
    sent = 0
    url = f"http://127.0.0.1:{ctx.port('gateway')}{path}"

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent
        while not queue.empty():
            request_id = queue.get_nowait()
            sent += 1
            delay = start + sent / rate_per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                response = await client.get(url, headers={"x-request-id": request_id})
            except httpx.HTTPError:
                result.unanswered.append(request_id)
                continue
            result.answered.append(request_id)
            result.statuses[response.status_code] = result.statuses.get(response.status_code, 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return result
