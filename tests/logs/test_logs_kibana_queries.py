"""Every saved Kibana query runs against the live Elasticsearch and finds what it promises."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from testbed.context import RenderContext
from testbed.logs import clients, kibana, layout

pytestmark = pytest.mark.native


def _run(ctx: RenderContext, query: str, extra: dict | None = None) -> int:
    """A saved Lucene query as Elasticsearch's query_string (what Kibana sends for language=lucene)."""
    clause: dict = {"query_string": {"query": query or "*", "analyze_wildcard": True}}
    if extra:
        clause = {"bool": {"must": [clause], "filter": [extra]}}
    with clients.reader(ctx) as es:
        return int(es.count(index=layout.shipping().index_pattern, query=clause)["count"])


def _write_probe(ctx: RenderContext, **fields: object) -> str:
    """One log document written now into today's shipping index (searchable on return); its event.id."""
    event_id = f"kibana-probe-{uuid.uuid4().hex}"
    with clients.writer(ctx) as writer:
        writer.create(
            index=layout.shipping().index_pattern.replace("*", time.strftime("%Y.%m.%d", time.gmtime())),
            id=event_id,
            document={
                "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "event": {"id": event_id, "dataset": "tests.kibana"},
                "service": {"name": "kibana-probe"},
                "message": "probe",
                **fields,
            },
            refresh="wait_for",
        )
    return event_id


def test_every_saved_query_finds_a_fresh_document_it_promises(logs_ctx: RenderContext) -> None:
    # One document every saved query promises to match (an error, in the placeholder trace the
    # one-trace query ships with); each query, narrowed to that document, must find it exactly once.
    event_id = _write_probe(
        logs_ctx, log={"level": "error"}, trace={"id": "00000000000000000000000000000000"}
    )
    only_probe = {"term": {"event.id": event_id}}
    for saved in kibana.saved_queries():
        assert saved.language == "lucene", f"{saved.title}: only Lucene queries are checked here"
        assert _run(logs_ctx, saved.query, only_probe) == 1, (
            f"{saved.title} ({saved.query!r}) misses the probe"
        )


def test_errors_by_service_finds_a_fresh_error(logs_ctx: RenderContext) -> None:
    # A 404 on an unknown product is logged by the gateway at warning level, a 5xx at error: use a bad
    # order id through the gateway to get an error-level line from a real service.
    (errors,) = [q for q in kibana.saved_queries() if q.object_id == "logs-errors-by-service"]
    before = _run(logs_ctx, errors.query)
    with clients.writer(logs_ctx) as writer:
        event_id = f"kibana-probe-{uuid.uuid4().hex}"
        writer.create(
            index=layout.shipping().index_pattern.replace("*", time.strftime("%Y.%m.%d", time.gmtime())),
            id=event_id,
            document={
                "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "event": {"id": event_id, "dataset": "tests.kibana"},
                "log": {"level": "error"},
                "service": {"name": "kibana-probe"},
                "message": "probe error",
            },
            refresh="wait_for",
        )
    assert _run(logs_ctx, errors.query) == before + 1


def test_one_trace_query_finds_every_service_of_a_real_trace(logs_ctx: RenderContext) -> None:
    (one_trace,) = [q for q in kibana.saved_queries() if q.object_id == "logs-one-trace"]
    trace_id = uuid.uuid4().hex
    response = httpx.post(
        f"http://127.0.0.1:{logs_ctx.port('gateway')}/orders",
        json={"product_id": "kettle", "quantity": 1},
        headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
        timeout=10,
    )
    assert response.status_code == 202
    query = one_trace.query.replace("0" * 32, trace_id)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        services = set()
        with clients.reader(logs_ctx) as es:
            hits = es.search(
                index=layout.shipping().index_pattern, query={"query_string": {"query": query}}, size=100
            )["hits"]["hits"]
        services = {hit["_source"]["service"]["name"] for hit in hits}
        if services >= {"gateway", "inventory", "orders", "payments"}:
            return
        time.sleep(0.5)
    pytest.fail(f"the one-trace query found only {sorted(services)}")
