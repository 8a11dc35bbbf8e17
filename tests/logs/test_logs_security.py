"""Least privilege on the live node: the writer cannot read, the reader cannot write, anonymous gets 401."""

from __future__ import annotations

import ssl

import httpx
import pytest
from elasticsearch import AuthorizationException, Elasticsearch

from testbed.context import RenderContext
from testbed.logs import clients

pytestmark = pytest.mark.native


def test_writer_creates_but_cannot_read_overwrite_or_delete(
    logs_ctx: RenderContext, scratch_index: str
) -> None:
    with clients.writer(logs_ctx) as writer:
        created = writer.create(
            index=scratch_index, id="sec-1", document={"message": "hello", "event": {"id": "sec-1"}}
        )
        assert created["result"] == "created"
        with pytest.raises(AuthorizationException):
            writer.search(index=scratch_index)
        with pytest.raises(AuthorizationException):
            writer.get(index=scratch_index, id="sec-1")
        with pytest.raises(AuthorizationException):
            writer.index(index=scratch_index, id="sec-1", document={"message": "overwritten"})
        with pytest.raises(AuthorizationException):
            writer.delete(index=scratch_index, id="sec-1")
        with pytest.raises(AuthorizationException):
            writer.indices.delete(index=scratch_index)
        with pytest.raises(AuthorizationException):
            writer.create(index="not-logs", id="x", document={"message": "elsewhere"})


def test_reader_reads_but_cannot_write(
    logs_ctx: RenderContext, es_super: Elasticsearch, scratch_index: str
) -> None:
    es_super.index(index=scratch_index, id="sec-2", document={"message": "readable"}, refresh=True)
    with clients.reader(logs_ctx) as reader:
        assert reader.search(index=scratch_index)["hits"]["total"]["value"] == 1
        with pytest.raises(AuthorizationException):
            reader.create(index=scratch_index, id="sec-3", document={"message": "nope"})
        with pytest.raises(AuthorizationException):
            reader.delete(index=scratch_index, id="sec-2")


def test_anonymous_gets_401(logs_ctx: RenderContext) -> None:
    for path in ("/_cluster/health", "/logs-testbed-*/_search"):
        response = httpx.get(
            clients.es_url(logs_ctx) + path, verify=ssl.create_default_context(cafile=logs_ctx.ca_cert)
        )
        assert response.status_code == 401


def test_template_maps_new_daily_index(
    logs_ctx: RenderContext, es_super: Elasticsearch, scratch_index: str
) -> None:
    with clients.writer(logs_ctx) as writer:
        writer.create(
            index=scratch_index,
            id="m-1",
            document={"event": {"id": "m-1", "duration": 5}, "labels": {"a": "b"}},
        )
    mapping = es_super.indices.get_mapping(index=scratch_index)[scratch_index]["mappings"]["properties"]
    assert mapping["event"]["properties"]["id"]["type"] == "keyword"
    assert mapping["labels"]["properties"]["a"]["type"] == "keyword"
