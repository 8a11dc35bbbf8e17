"""Proofs of the log pipeline against the live native stack: every line lands, once, fast."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from elasticsearch import Elasticsearch

from testbed.context import RenderContext
from testbed.logs import clients, layout, probe
from testbed.native.control import NativeStack

pytestmark = pytest.mark.native
SERVICES = {"gateway", "inventory", "orders", "payments"}


@pytest.fixture
def reader(logs_ctx: RenderContext) -> Iterator[Elasticsearch]:
    with clients.reader(logs_ctx) as es:
        yield es


def _seconds_since(timestamp: str) -> float:
    return time.time() - datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def test_round_trip_every_service_logs_the_request_searchable_within_goal(
    logs_ctx: RenderContext, reader: Elasticsearch
) -> None:
    goal_s = layout.shipping().searchable_within_s
    request_id = f"rt-{uuid.uuid4().hex[:12]}"
    response = httpx.post(
        f"http://127.0.0.1:{logs_ctx.port('gateway')}/orders",
        json={"product_id": "kettle", "quantity": 1},
        headers={"x-request-id": request_id},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    latency_by_service: dict[str, float] = {}
    deadline = time.monotonic() + 30
    while set(latency_by_service) < SERVICES and time.monotonic() < deadline:
        hits = reader.search(
            index=layout.shipping().index_pattern,
            query={"term": {"transaction.id": request_id}},
            size=100,
        )["hits"]["hits"]
        for hit in hits:
            service = hit["_source"]["service"]["name"]
            latency_by_service.setdefault(service, _seconds_since(hit["_source"]["@timestamp"]))
        time.sleep(0.1)
    assert set(latency_by_service) >= SERVICES, f"services seen: {sorted(latency_by_service)}"
    slow = {service: round(s, 2) for service, s in latency_by_service.items() if s > goal_s}
    assert not slow, f"searchable later than {goal_s} s after being written: {slow}"


def _drive_in_background(
    ctx: RenderContext, run_id: str, n: int, rate: float
) -> tuple[threading.Thread, list]:
    results: list[probe.DriveResult] = []

    def drive() -> None:
        results.append(asyncio.run(probe.drive_gateway(ctx, run_id, n, rate_per_s=rate)))

    thread = threading.Thread(target=drive, name=f"load-{run_id}", daemon=True)
    thread.start()
    return thread, results


def _assert_exactly_once(
    reader: Elasticsearch, run_id: str, result: probe.DriveResult, timeout_s: float
) -> None:
    """Every answered request has exactly one access-log document; nothing else of the run has more than one.

    A request left unanswered (client timeout) may have been served, and then logged, or not: it may
    have zero or one document, never two.
    """
    answered = result.answered
    query = probe.run_query(run_id)
    seen = probe.wait_for_count(reader, query, len(answered), timeout_s)
    per_id = probe.values(reader, query, "transaction.id")
    missing = set(answered) - set(per_id)
    duplicated = {request_id: n for request_id, n in per_id.items() if n > 1}
    unexpected = set(per_id) - set(answered) - set(result.unanswered)
    assert (len(missing), len(duplicated), len(unexpected)) == (0, 0, 0), (
        f"{len(answered)} requests answered ({len(result.unanswered)} unanswered), {seen} access-log "
        f"documents: {len(missing)} lost "
        f"(e.g. {sorted(missing)[:3]}), {len(duplicated)} duplicated, {len(unexpected)} unexpected"
    )


@pytest.mark.slow
def test_completeness_under_load_exactly_n_access_logs(
    logs_ctx: RenderContext, reader: Elasticsearch
) -> None:
    run_id = f"load-{uuid.uuid4().hex[:10]}"
    result = asyncio.run(probe.drive_gateway(logs_ctx, run_id, 10_000, rate_per_s=1_000, concurrency=16))
    # N >= 10,000 answered requests with known ids (the few the client gave up on are re-sent).
    assert len(result.answered) >= 9_900, (
        f"the gateway answered only {len(result.answered)}: {result.statuses}"
    )
    _assert_exactly_once(reader, run_id, result, timeout_s=120)


@pytest.mark.slow
def test_elasticsearch_outage_of_60_s_under_load_loses_and_duplicates_nothing(
    logs_ctx: RenderContext, reader: Elasticsearch
) -> None:
    stack = NativeStack(logs_ctx)
    run_id = f"esdown-{uuid.uuid4().hex[:10]}"
    thread, results = _drive_in_background(logs_ctx, run_id, n=3_000, rate=30)
    time.sleep(5)
    stack.stop("elasticsearch")
    try:
        time.sleep(60)
    finally:
        stack.start("elasticsearch")  # waits until healthy (and re-applies the templates)
    thread.join(timeout=300)
    assert results, "the load generator did not finish"
    _assert_exactly_once(reader, run_id, results[0], timeout_s=240)


@pytest.mark.slow
def test_shipper_kill_9_under_load_loses_and_duplicates_nothing(
    logs_ctx: RenderContext, reader: Elasticsearch
) -> None:
    stack = NativeStack(logs_ctx)
    run_id = f"kill9-{uuid.uuid4().hex[:10]}"
    thread, results = _drive_in_background(logs_ctx, run_id, n=2_000, rate=40)
    time.sleep(15)
    stack.kill("rsyslog")
    try:
        time.sleep(10)
    finally:
        stack.start("rsyslog")
    thread.join(timeout=300)
    assert results, "the load generator did not finish"
    _assert_exactly_once(reader, run_id, results[0], timeout_s=180)
